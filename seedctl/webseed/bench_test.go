package webseed_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/webseed"
)

// BenchmarkFetch reads 1 MiB pieces of a 16 MiB file from a loopback net/http server (whose
// own cost is most of it): throughput and the client's allocations per piece.
func BenchmarkFetch(b *testing.B) {
	const size, piece = 16 << 20, 1 << 20
	data := randomBytes(1, size)
	ts := httptest.NewServer(&site{files: map[string][]byte{"/f": data}})
	defer ts.Close()
	tor := newTorrent(b, "f", true, piece, storage.File{Path: []string{"f"}, Length: size})
	s, err := webseed.New(ts.URL+"/f", tor, webseed.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	dst := make([]byte, piece)
	b.SetBytes(piece)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Fetch(context.Background(), dst, int64(i%(size/piece))*piece); err != nil {
			b.Fatal(err)
		}
	}
}
