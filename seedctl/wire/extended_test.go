package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestExtendedHandshakeRoundTrip(t *testing.T) {
	h := ExtendedHandshake{
		M:            map[string]int{UTMetadata: 2, "ut_pex": 0},
		V:            "webswarm 0.1",
		Reqq:         500,
		P:            6881,
		MetadataSize: 31337,
	}
	h.SetYourIP(netip.MustParseAddr("127.0.0.2"))
	enc, err := h.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "d1:md11:ut_metadatai2e6:ut_pexi0ee13:metadata_sizei31337e1:pi6881e4:reqqi500e1:v12:webswarm 0.16:yourip4:\x7f\x00\x00\x02e"
	if string(enc) != want {
		t.Fatalf("encoded\n%q\nwant\n%q", enc, want)
	}
	got, err := ParseExtendedHandshake(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, h) {
		t.Fatalf("decoded %+v, want %+v", *got, h)
	}
	if a := got.YourAddr(); a != netip.MustParseAddr("127.0.0.2") {
		t.Fatalf("YourAddr %v", a)
	}
	h.SetYourIP(netip.MustParseAddr("::ffff:10.0.0.1"))
	if len(h.YourIP) != 4 {
		t.Fatalf("an IPv4-mapped yourip is %d bytes", len(h.YourIP))
	}
	h.SetYourIP(netip.MustParseAddr("2001:db8::1"))
	if len(h.YourIP) != 16 {
		t.Fatalf("an IPv6 yourip is %d bytes", len(h.YourIP))
	}
}

func TestExtendedHandshakeEmptyHasM(t *testing.T) {
	enc, err := (&ExtendedHandshake{}).Encode()
	if err != nil || string(enc) != "d1:mdee" {
		t.Fatalf("%q %v", enc, err)
	}
}

// What real clients send (libtorrent 2.0, aria2 1.36 shapes), extra keys included.
func TestParseExtendedHandshakeClients(t *testing.T) {
	lt := "d12:complete_agoi-1e1:md11:lt_donthavei7e10:share_modei8e11:upload_onlyi3e12:ut_holepunchi4e11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei179e4:reqqi500e11:upload_onlyi1e1:v18:libtorrent/2.0.8.06:yourip4:\x7f\x00\x00\x01e"
	h, err := ParseExtendedHandshake([]byte(lt))
	if err != nil {
		t.Fatal(err)
	}
	if h.M[UTMetadata] != 2 || h.Reqq != 500 || h.V != "libtorrent/2.0.8.0" || h.MetadataSize != 179 || h.YourAddr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("%+v", h)
	}
	aria := "d1:md11:ut_metadatai2e6:ut_pexi1ee1:pi6881e1:v12:aria2/1.36.0e"
	h, err = ParseExtendedHandshake([]byte(aria))
	if err != nil || h.P != 6881 || h.V != "aria2/1.36.0" {
		t.Fatalf("%+v %v", h, err)
	}
}

func TestParseExtendedHandshakeHostile(t *testing.T) {
	for _, in := range []string{
		"",
		"le",
		"d1:mi3ee",                   // m not a dict
		"d1:md11:ut_metadatai256eee", // id over a byte
		"d1:md11:ut_metadatai-1eee",
		"d1:pi65536ee",
		"d4:reqqi-1ee",
		"d13:metadata_sizei99999999999ee",
		"d1:md11:ut_metadatai1e", // truncated
		"d1:v999999999:xe",       // string longer than the payload
	} {
		if _, err := ParseExtendedHandshake([]byte(in)); !errors.Is(err, ErrBadExtended) {
			t.Errorf("%q: %v, want ErrBadExtended", in, err)
		}
	}
	h, err := ParseExtendedHandshake([]byte("d6:yourip3:abce"))
	if err != nil || h.YourIP != nil {
		t.Fatalf("a 3-byte yourip: %+v %v (want dropped, not fatal)", h, err)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("x"), MetadataPieceLen)
	tests := []struct {
		m    MetadataMessage
		want string
	}{
		{MetadataMessage{Type: MetadataRequest, Piece: 0}, "d8:msg_typei0e5:piecei0ee"},
		{MetadataMessage{Type: MetadataReject, Piece: 3}, "d8:msg_typei2e5:piecei3ee"},
		{MetadataMessage{Type: MetadataData, Piece: 1, TotalSize: 20000, Data: data[:20000-MetadataPieceLen]}, ""},
		{MetadataMessage{Type: MetadataData, Piece: 0, TotalSize: 20000, Data: data}, ""},
	}
	for _, tc := range tests {
		enc := AppendMetadata(nil, &tc.m)
		if tc.want != "" && string(enc) != tc.want {
			t.Errorf("encoded %q, want %q", enc, tc.want)
		}
		got, err := ParseMetadata(enc)
		if err != nil {
			t.Fatalf("%+v: %v", tc.m.Type, err)
		}
		if got.Type != tc.m.Type || got.Piece != tc.m.Piece || got.TotalSize != tc.m.TotalSize || !bytes.Equal(got.Data, tc.m.Data) {
			t.Fatalf("decoded %+v, want %+v", got, tc.m)
		}
	}
}

func TestParseMetadataHostile(t *testing.T) {
	for _, in := range []string{
		"",
		"d8:msg_typei0e5:piecei0eeXX",      // bytes after a request
		"d8:msg_typei3e5:piecei0ee",        // unknown type
		"d8:msg_typei0e5:piecei-1ee",       // negative piece
		"d8:msg_typei0e5:piecei99999999ee", // piece past any metadata
		"d8:msg_typei1e5:piecei0ee" + "x",  // data without total_size
		"d8:msg_typei1e5:piecei0e10:total_sizei-5ee",
		"d8:msg_typei1e5:piecei0e10:total_sizei999999999ee",
		"d8:msg_typei1e5:piecei0e10:total_sizei5ee" + string(make([]byte, MetadataPieceLen+1)),
		"d8:msg_type",
	} {
		if _, err := ParseMetadata([]byte(in)); !errors.Is(err, ErrBadExtended) {
			t.Errorf("%.60q: %v, want ErrBadExtended", in, err)
		}
	}
}
