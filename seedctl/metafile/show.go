package metafile

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Summary is what `seedctl show` prints, in a form that encodes to stable JSON.
type Summary struct {
	Name         string     `json:"name"`
	InfoHash     string     `json:"info_hash,omitempty"`    // v1, 40 hex digits
	InfoHashV2   string     `json:"info_hash_v2,omitempty"` // v2, 64 hex digits
	Version      string     `json:"version"`                // "v1", "v2" or "hybrid"
	TotalLength  int64      `json:"total_length"`
	PieceLength  int64      `json:"piece_length"`
	Pieces       int        `json:"pieces"`
	Private      bool       `json:"private"`
	Source       string     `json:"source,omitempty"`
	Files        []FileInfo `json:"files"`
	Trackers     [][]string `json:"trackers"`
	WebSeeds     []string   `json:"web_seeds"`
	Comment      string     `json:"comment,omitempty"`
	CreatedBy    string     `json:"created_by,omitempty"`
	CreationDate string     `json:"creation_date,omitempty"` // RFC 3339, UTC
	Magnet       string     `json:"magnet"`
}

// FileInfo is one payload file in a Summary (pad files are left out).
type FileInfo struct {
	Path   string `json:"path"` // slash-separated, starting with the torrent's name
	Length int64  `json:"length"`
}

// Summarize describes t.
func Summarize(t *Torrent) *Summary {
	s := &Summary{
		Name:        t.Name,
		PieceLength: t.PieceLength,
		Pieces:      t.Layout.NumPieces(),
		Private:     t.Private,
		Source:      t.Source,
		Trackers:    t.Trackers,
		WebSeeds:    t.WebSeeds,
		Comment:     t.Comment,
		CreatedBy:   t.CreatedBy,
		Magnet:      t.Magnet(),
	}
	if s.Trackers == nil {
		s.Trackers = [][]string{}
	}
	if s.WebSeeds == nil {
		s.WebSeeds = []string{}
	}
	switch {
	case t.HasV1 && t.HasV2:
		s.Version = "hybrid"
	case t.HasV2:
		s.Version = "v2"
	default:
		s.Version = "v1"
	}
	if t.HasV1 {
		s.InfoHash = hex.EncodeToString(t.InfoHash[:])
	}
	if t.HasV2 {
		s.InfoHashV2 = hex.EncodeToString(t.InfoHashV2[:])
	}
	if t.CreationDate > 0 {
		s.CreationDate = time.Unix(t.CreationDate, 0).UTC().Format(time.RFC3339)
	}
	for _, f := range t.Layout.Files {
		if f.Pad {
			continue
		}
		s.TotalLength += f.Length
		p := t.Name
		if !t.Single {
			p = strings.Join(append([]string{t.Name}, f.Path...), "/")
		}
		s.Files = append(s.Files, FileInfo{Path: p, Length: f.Length})
	}
	return s
}

// Magnet returns the torrent's magnet link (BEP 9; BEP 52's btmh for v2): info-hash(es),
// name, every tracker, every web seed.
func (t *Torrent) Magnet() string {
	var parts []string
	if t.HasV1 {
		parts = append(parts, "xt=urn:btih:"+hex.EncodeToString(t.InfoHash[:]))
	}
	if t.HasV2 {
		// multihash: 0x12 = sha2-256, 0x20 = 32 bytes
		parts = append(parts, "xt=urn:btmh:1220"+hex.EncodeToString(t.InfoHashV2[:]))
	}
	parts = append(parts, "dn="+url.QueryEscape(t.Name))
	seen := map[string]bool{}
	for _, tier := range t.Trackers {
		for _, u := range tier {
			if !seen[u] {
				seen[u] = true
				parts = append(parts, "tr="+url.QueryEscape(u))
			}
		}
	}
	for _, w := range t.WebSeeds {
		parts = append(parts, "ws="+url.QueryEscape(w))
	}
	return "magnet:?" + strings.Join(parts, "&")
}

// Escape makes a string from a torrent safe to print on a terminal: control characters (C0,
// DEL, C1 — ESC and CSI start terminal escape sequences), other non-printable runes (such as
// bidirectional overrides, which reorder what is shown) and invalid UTF-8 are written as Go
// escapes (\x1b, \u202e), and a backslash as \\ so that the result is unambiguous.
// Printable text, non-ASCII letters included, is kept as is.
func Escape(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == '\\' || r == utf8.RuneError || !unicode.IsPrint(r) })
	if i < 0 {
		return s
	}
	b := []byte(s[:i])
	for j := i; j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = fmt.Appendf(b, "\\x%02x", s[j])
		case r == '\\':
			b = append(b, `\\`...)
		case unicode.IsPrint(r):
			b = append(b, s[j:j+n]...)
		default:
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\n', '\u202e'
			b = append(b, q[1:len(q)-1]...)
		}
		j += n
	}
	return string(b)
}

// Text renders s for a terminal; every string from the torrent is escaped (see Escape).
func (s *Summary) Text() string {
	var b strings.Builder
	row := func(k, v string) { fmt.Fprintf(&b, "%-14s %s\n", k+":", Escape(v)) }
	row("name", s.Name)
	if s.InfoHash != "" {
		row("info hash", s.InfoHash)
	}
	if s.InfoHashV2 != "" {
		row("info hash v2", s.InfoHashV2)
	}
	row("version", s.Version)
	row("total size", fmt.Sprintf("%s (%d bytes)", FormatSize(s.TotalLength), s.TotalLength))
	row("pieces", fmt.Sprintf("%d × %s", s.Pieces, FormatSize(s.PieceLength)))
	row("private", map[bool]string{true: "yes", false: "no"}[s.Private])
	if s.Source != "" {
		row("source", s.Source)
	}
	if s.CreationDate != "" {
		row("created", s.CreationDate)
	}
	if s.CreatedBy != "" {
		row("created by", s.CreatedBy)
	}
	if s.Comment != "" {
		row("comment", s.Comment)
	}
	if len(s.Trackers) == 0 {
		row("trackers", "none")
	}
	for i, tier := range s.Trackers {
		row(fmt.Sprintf("tier %d", i+1), strings.Join(tier, ", "))
	}
	for _, w := range s.WebSeeds {
		row("web seed", w)
	}
	row("magnet", s.Magnet)
	fmt.Fprintf(&b, "files (%d):\n", len(s.Files))
	for _, f := range s.Files {
		fmt.Fprintf(&b, "  %12d  %s\n", f.Length, Escape(f.Path))
	}
	return b.String()
}
