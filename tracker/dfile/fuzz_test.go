package dfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/tracker/swarm"
)

// seeds start both fuzz targets.
var seeds = [][]byte{
	[]byte("d9:completedde5:peersdee"),
	[]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e4:lefti0eeeee"),
	[]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip3:::14:porti1e4:seeni-5e6:hiddeni1eeeee"),
	[]byte("d9:completedd20:aaaaaaaaaaaaaaaaaaaai99999999999eee"),
	[]byte("le"),
	[]byte("d9:completedd3:badi1e20:aaaaaaaaaaaaaaaaaaaai2ee5:peersd3:badde7:allowedd1:ald1:xi1eeeee"),
	[]byte("d20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e3:nati1eeee"),
	[]byte("d5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd2:ip8:10.0.0.14:porti1e3:key999999:xeeee"),
	[]byte("d9:completedd20:aaaaaaaaaaaaaaaaaaaai3ee5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd7:countedi1e6:hiddeni0e2:ip8:10.0.0.18:key hashi77e4:lefti1e3:nati0e4:porti6881e4:seeni1800000000eeee"),
	[]byte("d7:allowedd20:aaaaaaaaaaaaaaaaaaaad6:lengthi-1e4:name3:abcee17:allowed_dir_filesd3:x/yl1:a2:bbee5:peersd20:aaaaaaaaaaaaaaaaaaaad20:bbbbbbbbbbbbbbbbbbbbd8:given ip3:1.23:key2:\x00\xff2:ip3:::14:porti1eeeee"),
}

// FuzzDecode feeds arbitrary bytes to the state-file reader: it must return a decode error
// or a state the store accepts, never panic.
func FuzzDecode(f *testing.F) {
	for _, b := range seeds {
		f.Add(b)
	}
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

// FuzzAgainstLibrary checks the reader finds a file corrupt exactly when the library decoder
// it replaced (github.com/anacrolix/torrent/bencode into the file's shape) did, so that
// streaming changed which files are moved aside in two ways only, neither seen in a file
// bttrack or we write: the library rejected dictionaries with unsorted keys, but only inside
// values it skipped (bttrack's "allowed"), never in the peers it decoded, and the reader
// accepts both alike; the library took a list of one dictionary where a dictionary belongs
// ("peers": [{...}]), and the reader refuses it.
func FuzzAgainstLibrary(f *testing.F) {
	for _, b := range seeds {
		f.Add(b)
	}
	type libPeer struct {
		IP      string `bencode:"ip"`
		Port    int64  `bencode:"port"`
		Left    int64  `bencode:"left"`
		NAT     *int64 `bencode:"nat"`
		Seen    *int64 `bencode:"seen"`
		KeyHash int64  `bencode:"key hash"`
		Counted int64  `bencode:"counted"`
		Hidden  *int64 `bencode:"hidden"`
	}
	type libState struct {
		Peers     map[string]map[string]libPeer `bencode:"peers"`
		Completed map[string]int64              `bencode:"completed"`
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var st libState
		libErr := bencode.Unmarshal(data, &st)
		if libErr != nil && strings.Contains(libErr.Error(), "unsorted") {
			return
		}
		_, err := readState(bytes.NewReader(data), int64(len(data)), discardStore{}, time.Unix(1_800_000_000, 0))
		if libErr == nil && err != nil && strings.Contains(err.Error(), "want a dictionary, found 'l'") {
			return
		}
		if corrupt := errors.Is(err, errDecode); corrupt != (libErr != nil) {
			t.Fatalf("reader: %v; library: %v", err, libErr)
		}
	})
}
