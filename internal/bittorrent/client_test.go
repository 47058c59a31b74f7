package bittorrent

import "testing"

func TestClientFamily(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"-TR3000-abcdefghijkl", "transmission"},
		{"-LT2080-abcdefghijkl", "libtorrent"},
		{"-lt0D80-abcdefghijkl", "rtorrent"},
		{"-CT0303-abcdefghijkl", "ctorrent"},
		{"A2-1-36-0-abcdefghij", "aria2"},
		{"-ZZ1234-abcdefghijkl", "other"},
		{"M3-4-2--abcdefghijkl", "mainline"},
		{"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13", "other"},
	} {
		var id PeerID
		copy(id[:], tc.id)
		if got := ClientFamily(id); got != tc.want {
			t.Errorf("ClientFamily(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	families := map[string]bool{}
	for _, f := range ClientFamilies() {
		if families[f] {
			t.Errorf("family %q listed twice", f)
		}
		families[f] = true
	}
	for _, name := range azureusClients {
		if !families[name] {
			t.Errorf("family %q missing from ClientFamilies", name)
		}
	}
}

func TestParseInfoHash(t *testing.T) {
	ih, err := ParseInfoHash("0123456789abcdef0123456789ABCDEF01234567")
	if err != nil {
		t.Fatal(err)
	}
	if got := ih.String(); got != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"", "00", "zz23456789abcdef0123456789abcdef01234567"} {
		if _, err := ParseInfoHash(bad); err == nil {
			t.Errorf("ParseInfoHash(%q) succeeded", bad)
		}
	}
	if _, err := InfoHashFromBytes(make([]byte, 19)); err == nil {
		t.Error("InfoHashFromBytes accepted 19 bytes")
	}
}
