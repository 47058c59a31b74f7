package announce

import "net/netip"

// AllowIPOverride implements bttrack's only_local_override_ip: may a client at address client
// register under the address it claims (HTTP ip=, the BEP 15 IP field)? mode 0 = always,
// 1 = only clients on loopback, private or link-local addresses, 2 = only when NAT checking is
// on (the check then proves the claimed address answers).
func AllowIPOverride(mode int, natCheck bool, client netip.Addr) bool {
	switch mode {
	case 0:
		return true
	case 1:
		return client.IsLoopback() || client.IsPrivate() || client.IsLinkLocalUnicast()
	default:
		return natCheck
	}
}
