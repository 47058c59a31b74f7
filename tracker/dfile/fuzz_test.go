package dfile

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// FuzzDecode feeds arbitrary bytes to the state-file reader: it must return a decode error
// or a state the store accepts, never panic.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("d9:completedde5:peersdee"))
	f.Add([]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e4:lefti0eeeee"))
	f.Add([]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip3:::14:porti1e4:seeni-5e6:hiddeni1eeeee"))
	f.Add([]byte("d9:completedd20:aaaaaaaaaaaaaaaaaaaai99999999999eee"))
	f.Add([]byte("le"))
	f.Add([]byte("d9:completedd3:badi1e20:aaaaaaaaaaaaaaaaaaaai2ee5:peersd3:badde7:allowedd1:ald1:xi1eeeee"))
	f.Add([]byte("d20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e3:nati1eeee"))
	f.Add([]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e3:key999999:xeeee"))
	clk := newClock()
	store, err := swarm.NewMemory(swarm.Config{Now: clk.Now, Shards: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := readState(bytes.NewReader(data), int64(len(data)), store, time.Unix(1_800_000_000, 0))
		if err != nil && !errors.Is(err, errDecode) {
			t.Fatalf("restore of a decoded file: %v", err)
		}
	})
}
