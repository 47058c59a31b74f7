package dfile

import (
	"testing"
	"time"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// FuzzDecode feeds arbitrary bytes to the state-file reader: it must return an error or a
// state the store accepts, never panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("d9:completedde5:peersdee"))
	f.Add([]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e4:lefti0eeeee"))
	f.Add([]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip3:::14:porti1e4:seeni-5e6:hiddeni1eeeee"))
	f.Add([]byte("d9:completedd20:aaaaaaaaaaaaaaaaaaaai99999999999eee"))
	f.Add([]byte("le"))
	clk := newClock()
	store, err := swarm.NewMemory(swarm.Config{Now: clk.Now, Shards: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decode(data)
		if err != nil {
			return
		}
		if _, err := restore(st, store, time.Unix(1_800_000_000, 0)); err != nil {
			t.Fatalf("restore of a decoded file: %v", err)
		}
	})
}
