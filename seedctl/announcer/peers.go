package announcer

import (
	"net/netip"
	"slices"
)

// maxPending bounds the peers waiting in the Peers channel for a slow reader.
const maxPending = 2000

// appendCompact appends the peers of a compact list (BEP 23: 6 bytes per IPv4 peer; BEP 7
// and BEP 15: 18 per IPv6 peer). A trailing partial record is ignored.
func appendCompact(dst []netip.AddrPort, b []byte, ipLen int) []netip.AddrPort {
	rl := ipLen + 2
	for ; len(b) >= rl; b = b[rl:] {
		var ip netip.Addr
		if ipLen == 4 {
			ip = netip.AddrFrom4([4]byte(b[:4]))
		} else {
			ip = netip.AddrFrom16([16]byte(b[:16]))
		}
		dst = append(dst, netip.AddrPortFrom(ip, uint16(b[ipLen])<<8|uint16(b[ipLen+1])))
	}
	return dst
}

// appendDict appends the peers of a BEP 3 dictionary list, as decoded into []any. Entries
// that are not dictionaries, lack a numeric address (host names are not resolved) or a valid
// port, or carry our own peer ID, are skipped.
func appendDict(dst []netip.AddrPort, list []any, self [20]byte) []netip.AddrPort {
	for _, e := range list {
		d, ok := e.(map[string]any)
		if !ok {
			continue
		}
		ipText, _ := d["ip"].(string)
		ip, err := netip.ParseAddr(ipText)
		if err != nil || ip.Zone() != "" {
			continue
		}
		port, ok := d["port"].(int64)
		if !ok || port <= 0 || port > 65535 {
			continue
		}
		if id, ok := d["peer id"].(string); ok && id == string(self[:]) {
			continue
		}
		dst = append(dst, netip.AddrPortFrom(ip, uint16(port)))
	}
	return dst
}

// cleanPeers drops unusable addresses (port 0, unspecified, multicast), addresses in self
// and duplicates, in place, keeping the tracker's order (which is random: the session dials
// the first ones). IPv4-mapped IPv6 addresses become IPv4. self must be unmapped.
func cleanPeers(peers []netip.AddrPort, self []netip.AddrPort) []netip.AddrPort {
	seen := make(map[netip.AddrPort]struct{}, len(peers))
	out := peers[:0]
	for _, p := range peers {
		ip := p.Addr().Unmap()
		if p.Port() == 0 || !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() {
			continue
		}
		p = netip.AddrPortFrom(ip, p.Port())
		if _, dup := seen[p]; dup || slices.Contains(self, p) {
			continue
		}
		seen[p] = struct{}{}
		out = append(out, p)
	}
	return out
}

// mergePeers returns fresh followed by the peers of old it lacks, at most maxPending long
// (the freshest kept).
func mergePeers(old, fresh []netip.AddrPort) []netip.AddrPort {
	m := make([]netip.AddrPort, 0, min(len(old)+len(fresh), maxPending))
	fresh = fresh[:min(len(fresh), maxPending)]
	m = append(m, fresh...)
	for _, p := range old {
		if len(m) == maxPending {
			break
		}
		if !slices.Contains(fresh, p) {
			m = append(m, p)
		}
	}
	return m
}
