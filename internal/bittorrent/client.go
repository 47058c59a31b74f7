package bittorrent

// ClientFamily names the client that made a peer ID, from a bounded set (safe as a metric label).
// Azureus-style IDs ("-XX1234-") are matched on their two-letter code; mainline-style IDs
// ("M3-4-2--") on their first letter; aria2's "A2-1-36-0-" on its prefix. Anything else is "other".
func ClientFamily(id PeerID) string {
	if id[0] == '-' && id[7] == '-' {
		if name, ok := azureusClients[string(id[1:3])]; ok {
			return name
		}
		return "other"
	}
	if string(id[:3]) == "A2-" { // aria2: "A2-1-36-0-"
		return "aria2"
	}
	switch id[0] {
	case 'M':
		return "mainline"
	case 'S':
		return "shadow"
	case 'T':
		return "bittornado"
	}
	return "other"
}

// ClientFamilies lists every value ClientFamily can return, in a stable order.
func ClientFamilies() []string {
	seen := map[string]bool{}
	var out []string
	for _, code := range azureusOrder {
		name := azureusClients[code]
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return append(out, "mainline", "shadow", "bittornado", "other")
}

var azureusOrder = []string{"lt", "LT", "qB", "TR", "AZ", "BI", "UT", "UM", "DE", "WW", "WS", "CT", "rt", "XL", "BC", "FX", "KT", "AG", "A2", "SD", "TB"}

// azureusClients maps BEP 20 two-letter codes to a family name. libtorrent (rasterbar, "LT") and
// rakshasa's libtorrent ("lt", used by rtorrent) are different libraries.
var azureusClients = map[string]string{
	"lt": "rtorrent",
	"LT": "libtorrent",
	"qB": "qbittorrent",
	"TR": "transmission",
	"AZ": "vuze",
	"BI": "biglybt",
	"UT": "utorrent",
	"UM": "utorrent",
	"DE": "deluge",
	"WW": "webtorrent",
	"WS": "webswarm",
	"CT": "ctorrent",
	"rt": "rtorrent",
	"XL": "xunlei",
	"BC": "bitcomet",
	"FX": "flashget",
	"KT": "ktorrent",
	"AG": "aria2",
	"A2": "aria2",
	"SD": "xunlei",
	"TB": "trackerbench",
}
