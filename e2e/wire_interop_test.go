package e2e

// Interop of seedctl/wire with real peers on loopback: our side dials libtorrent and aria2
// seeders (plaintext, MSE with RC4, and "prefer"), exchanges BEP 3/6/10/9 messages and
// checks downloaded blocks against the piece hashes; and real downloaders (libtorrent with
// --peer, aria2 through the tracker) connect to a minimal server built on wire.Accept and
// download a whole payload that they hash-check themselves.

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/testenv"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// wireTorrent is what the wire tests need of a torrent: its pieces and metadata.
type wireTorrent struct {
	path        string
	infoHash    bittorrent.InfoHash
	info        []byte // the bencoded info dictionary (BEP 9 metadata)
	pieceLength int
	length      int
	hashes      [][20]byte
}

func (wt *wireTorrent) numPieces() int { return len(wt.hashes) }

func (wt *wireTorrent) pieceSize(i int) int {
	return min(wt.pieceLength, wt.length-i*wt.pieceLength)
}

// wireMakeTorrent writes a random payload of size bytes under a new directory and makes a
// torrent of it (32 KiB pieces, an announce URL nobody answers unless given one).
func wireMakeTorrent(t *testing.T, size int, announce string) (wt *wireTorrent, dataDir string, payload []byte) {
	t.Helper()
	dataDir = t.TempDir()
	payload = writePayload(t, dataDir, "wire.bin", size)
	if announce == "" {
		announce = "http://127.0.0.1:9/announce"
	}
	path := makeTorrent(t, filepath.Join(dataDir, "wire.bin"), announce)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var mi struct {
		Info bencode.Bytes `bencode:"info"`
	}
	if err := bencode.Unmarshal(data, &mi); err != nil {
		t.Fatal(err)
	}
	var info struct {
		PieceLength int    `bencode:"piece length"`
		Pieces      []byte `bencode:"pieces"`
		Length      int    `bencode:"length"`
	}
	if err := bencode.Unmarshal(mi.Info, &info); err != nil {
		t.Fatal(err)
	}
	wt = &wireTorrent{path: path, infoHash: sha1.Sum(mi.Info), info: mi.Info,
		pieceLength: info.PieceLength, length: info.Length}
	for p := info.Pieces; len(p) >= 20; p = p[20:] {
		wt.hashes = append(wt.hashes, [20]byte(p[:20]))
	}
	if wt.numPieces() != (size+info.PieceLength-1)/info.PieceLength {
		t.Fatalf("torrent has %d piece hashes for %d bytes", wt.numPieces(), size)
	}
	return wt, dataDir, payload
}

func wireConfig(enc wire.Encryption) *wire.Config {
	cfg := &wire.Config{Reserved: wire.DefaultReserved, Encryption: enc}
	copy(cfg.PeerID[:], "-WS0001-")
	rand.Read(cfg.PeerID[8:])
	return cfg
}

// wireOurMetadataID is the extension id we ask peers to send ut_metadata with.
const wireOurMetadataID = 3

// wireFetchResult is what wireFetch saw.
type wireFetchResult struct {
	crypto   wire.Crypto
	peerExt  *wire.ExtendedHandshake
	metadata bool // BEP 9: the info dictionary came and hashed to the info-hash
	unknown  uint64
}

// wireFetch connects to a seeder at addr with policy enc (retrying while the seeder starts),
// sends the extended handshake and INTERESTED, waits for the peer's have-set and UNCHOKE,
// requests every block of the first, second and last pieces (and the metadata, BEP 9, when
// the peer offers it), and checks each piece against its hash.
func wireFetch(t *testing.T, addr string, enc wire.Encryption, wt *wireTorrent) wireFetchResult {
	t.Helper()
	cfg := wireConfig(enc)
	var c *wire.Conn
	testenv.WaitFor(t, 60*time.Second, "a handshake with the seeder at "+addr, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		c, err = wire.Dial(ctx, nil, addr, cfg, wt.infoHash)
		return err
	})
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	res := wireFetchResult{crypto: c.Crypto}

	lim := c.Limits(cfg.Reserved)
	lim.NumPieces = wt.numPieces()
	lim.ValidRequest = func(index, begin, length uint32) bool { return false } // we serve nothing
	r := wire.NewReader(c.Reader, lim)
	w := wire.NewWriter(c.Writer)

	want := []int{0, 1, wt.numPieces() - 1}
	bufs := map[uint32][]byte{}
	blocksLeft := 0
	for _, p := range want {
		if _, ok := bufs[uint32(p)]; !ok {
			bufs[uint32(p)] = make([]byte, wt.pieceSize(p))
			blocksLeft += (wt.pieceSize(p) + wire.BlockSize - 1) / wire.BlockSize
		}
	}
	// Blocks go straight into their piece's buffer.
	r.BlockBuffer = func(index, begin uint32, n int) []byte {
		if b, ok := bufs[index]; ok && int(begin)+n <= len(b) {
			return b[begin:]
		}
		return nil
	}

	if lim.Extended {
		eh := wire.ExtendedHandshake{M: map[string]int{wire.UTMetadata: wireOurMetadataID}, V: "webswarm-e2e", Reqq: 250}
		eh.SetYourIP(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
		payload, err := eh.Encode()
		if err != nil {
			t.Fatal(err)
		}
		w.Extended(0, payload)
	}
	w.Interested()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	have := wire.NewBitfield(wt.numPieces())
	unchoked, requested, metaPending := false, false, false
	var m wire.Message
	for blocksLeft > 0 || metaPending || !unchoked {
		if err := r.Read(&m); err != nil {
			t.Fatalf("read after %v: %v (blocks left %d, metadata pending %v)", m.ID, err, blocksLeft, metaPending)
		}
		switch m.ID {
		case wire.Extended:
			if m.ExtendedID == 0 {
				eh, err := wire.ParseExtendedHandshake(m.Payload)
				if err != nil {
					t.Fatalf("peer's extended handshake %q: %v", m.Payload, err)
				}
				res.peerExt = eh
				if id := eh.M[wire.UTMetadata]; id != 0 && eh.MetadataSize == len(wt.info) && eh.MetadataSize <= wire.MetadataPieceLen {
					w.Extended(byte(id), wire.AppendMetadata(nil, &wire.MetadataMessage{Type: wire.MetadataRequest, Piece: 0}))
					metaPending = true
				}
			} else if m.ExtendedID == wireOurMetadataID {
				mm, err := wire.ParseMetadata(m.Payload)
				if err != nil {
					t.Fatalf("ut_metadata %q: %v", m.Payload, err)
				}
				if mm.Type != wire.MetadataData || mm.TotalSize != len(wt.info) || sha1.Sum(mm.Data) != wt.infoHash {
					t.Fatalf("ut_metadata answer: type %d total %d, %d bytes", mm.Type, mm.TotalSize, len(mm.Data))
				}
				res.metadata, metaPending = true, false
			}
		case wire.BitfieldMsg:
			if err := have.Replace(m.Bitfield); err != nil {
				t.Fatal(err)
			}
		case wire.HaveAll:
			have.SetAll()
		case wire.Have:
			have.Set(int(m.Index))
		case wire.Choke:
			unchoked = false
		case wire.Unchoke:
			unchoked = true
		case wire.Piece:
			if _, ok := bufs[m.Index]; !ok || &m.Block[0] != &bufs[m.Index][m.Begin] {
				t.Fatalf("block %d/%d not read into its piece buffer", m.Index, m.Begin)
			}
			blocksLeft--
		case wire.Reject:
			t.Fatalf("peer rejected %d/%d/%d", m.Index, m.Begin, m.Length)
		}
		if unchoked && !requested && have.Full() {
			for p := range bufs {
				for off := 0; off < wt.pieceSize(int(p)); off += wire.BlockSize {
					w.Request(p, uint32(off), uint32(min(wire.BlockSize, wt.pieceSize(int(p))-off)))
				}
			}
			requested = true
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	for p, b := range bufs {
		if sha1.Sum(b) != wt.hashes[p] {
			t.Fatalf("piece %d does not match its hash", p)
		}
	}
	res.unknown = r.Unknown()
	return res
}

// wireStartLibtorrentSeed starts lt.py seeding wt from dataDir on bindIP:port.
func wireStartLibtorrentSeed(t *testing.T, wt *wireTorrent, dataDir, bindIP string) string {
	t.Helper()
	requireLibtorrent(t)
	port := testenv.FreePort(t, bindIP)
	testenv.Start(t, systemPython, libtorrentArgs(t, "seed", wt.path, dataDir, bindIP, port, 10*time.Minute)...)
	return net.JoinHostPort(bindIP, strconv.Itoa(port))
}

// wireStartAria2Seed starts aria2c seeding wt from dataDir on bindIP:port, with extra
// options (--bt-require-crypto=true).
func wireStartAria2Seed(t *testing.T, wt *wireTorrent, dataDir, bindIP string, extra ...string) string {
	t.Helper()
	aria2c := testenv.Require(t, "aria2c", "aria2")
	port := testenv.FreePort(t, bindIP)
	args := append(aria2Args(dataDir, bindIP, port),
		"--check-integrity=true", "--bt-seed-unverified=false", "--seed-ratio=0.0", "--seed-time=10")
	args = append(append(args, extra...), wt.path)
	testenv.Start(t, aria2c, args...)
	return net.JoinHostPort(bindIP, strconv.Itoa(port))
}

// TestWireDialLibtorrent: our side dials a libtorrent seeder in plaintext, with MSE/RC4
// required, and with MSE preferred.
func TestWireDialLibtorrent(t *testing.T) {
	wt, dataDir, _ := wireMakeTorrent(t, 5*32<<10+1000, "")
	addr := wireStartLibtorrentSeed(t, wt, dataDir, "127.0.0.31")
	for _, tc := range []struct {
		enc  wire.Encryption
		want []wire.Crypto
	}{
		{wire.Off, []wire.Crypto{wire.Plaintext}},
		{wire.Require, []wire.Crypto{wire.RC4}},
		{wire.Prefer, []wire.Crypto{wire.Obfuscated, wire.RC4}},
	} {
		t.Run(tc.enc.String(), func(t *testing.T) {
			res := wireFetch(t, addr, tc.enc, wt)
			if !slices.Contains(tc.want, res.crypto) {
				t.Fatalf("crypto %v, want one of %v", res.crypto, tc.want)
			}
			if res.peerExt == nil || res.peerExt.V == "" || res.peerExt.Reqq <= 0 || res.peerExt.M[wire.UTMetadata] == 0 {
				t.Fatalf("libtorrent's extended handshake: %+v", res.peerExt)
			}
			if !res.metadata {
				t.Fatal("no metadata over ut_metadata (BEP 9)")
			}
			t.Logf("crypto %v, peer %q reqq %d yourip %v, unknown messages skipped %d",
				res.crypto, res.peerExt.V, res.peerExt.Reqq, res.peerExt.YourAddr(), res.unknown)
		})
	}
}

// TestWireDialAria2: the same against aria2, and against an aria2 that requires
// encryption (--bt-require-crypto=true): there plaintext must fail and MSE work.
func TestWireDialAria2(t *testing.T) {
	wt, dataDir, _ := wireMakeTorrent(t, 5*32<<10+1000, "")
	addr := wireStartAria2Seed(t, wt, dataDir, "127.0.0.32")
	for _, tc := range []struct {
		enc  wire.Encryption
		want []wire.Crypto
	}{
		{wire.Off, []wire.Crypto{wire.Plaintext}},
		{wire.Require, []wire.Crypto{wire.RC4}},
		{wire.Prefer, []wire.Crypto{wire.Obfuscated, wire.RC4}},
	} {
		t.Run(tc.enc.String(), func(t *testing.T) {
			res := wireFetch(t, addr, tc.enc, wt)
			if !slices.Contains(tc.want, res.crypto) {
				t.Fatalf("crypto %v, want one of %v", res.crypto, tc.want)
			}
			if res.peerExt == nil || res.peerExt.V == "" {
				t.Fatalf("aria2's extended handshake: %+v", res.peerExt)
			}
			t.Logf("crypto %v, peer %q reqq %d metadata %v", res.crypto, res.peerExt.V, res.peerExt.Reqq, res.metadata)
		})
	}

	t.Run("require-crypto", func(t *testing.T) {
		wt, dataDir, _ := wireMakeTorrent(t, 3*32<<10, "")
		addr := wireStartAria2Seed(t, wt, dataDir, "127.0.0.33", "--bt-require-crypto=true")
		res := wireFetch(t, addr, wire.Require, wt)
		if res.crypto != wire.RC4 {
			t.Fatalf("crypto %v, want rc4", res.crypto)
		}
		res = wireFetch(t, addr, wire.Prefer, wt)
		if res.crypto == wire.Plaintext {
			t.Fatal("prefer ended in plaintext")
		}
		// Now that aria2 is up, a plaintext handshake must be refused.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := wire.Dial(ctx, nil, addr, wireConfig(wire.Off), wt.infoHash)
		if err == nil {
			c.Close()
			t.Fatal("aria2 --bt-require-crypto=true accepted a plaintext handshake")
		}
		t.Logf("plaintext refused: %v", err)
	})
}

// wireServer is a minimal seeder built on wire.Accept: it serves one torrent from memory
// to whoever connects, and records each connection's crypto.
type wireServer struct {
	l       net.Listener
	cfg     *wire.Config
	wt      *wireTorrent
	payload []byte

	mu      sync.Mutex
	conns   map[net.Conn]bool
	cryptos []wire.Crypto
	errs    []error
	served  int
	wg      sync.WaitGroup
}

func wireStartServer(t *testing.T, ip string, enc wire.Encryption, wt *wireTorrent, payload []byte) *wireServer {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := wireConfig(enc)
	cfg.Known = func(ih bittorrent.InfoHash) bool { return ih == wt.infoHash }
	cfg.InfoHashes = slices.Values([]bittorrent.InfoHash{wt.infoHash})
	s := &wireServer{l: l, cfg: cfg, wt: wt, payload: payload, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[conn] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(conn)
				conn.Close()
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *wireServer) port() int { return s.l.Addr().(*net.TCPAddr).Port }

func (s *wireServer) serve(conn net.Conn) {
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := wire.Accept(conn, s.cfg)
	s.mu.Lock()
	if err != nil {
		s.errs = append(s.errs, err)
	} else {
		s.cryptos = append(s.cryptos, c.Crypto)
	}
	s.mu.Unlock()
	if err != nil {
		return
	}
	lim := c.Limits(s.cfg.Reserved)
	lim.NumPieces = s.wt.numPieces()
	lim.ValidRequest = func(index, begin, length uint32) bool {
		return int(index) < s.wt.numPieces() && int(begin)+int(length) <= s.wt.pieceSize(int(index))
	}
	r := wire.NewReader(c.Reader, lim)
	w := wire.NewWriter(c.Writer)
	if lim.Extended {
		eh := wire.ExtendedHandshake{M: map[string]int{wire.UTMetadata: wireOurMetadataID}, V: "webswarm-e2e",
			Reqq: 500, P: s.port(), MetadataSize: len(s.wt.info)}
		eh.SetYourIP(c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
		b, _ := eh.Encode()
		w.Extended(0, b)
	}
	if lim.Fast {
		w.HaveAll()
	} else {
		bf := wire.NewBitfield(s.wt.numPieces())
		bf.SetAll()
		w.Bitfield(bf.Bytes())
	}
	if err := w.Flush(); err != nil {
		return
	}
	var m wire.Message
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := r.Read(&m); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
				s.mu.Lock()
				s.errs = append(s.errs, fmt.Errorf("read: %w", err))
				s.mu.Unlock()
			}
			return
		}
		switch m.ID {
		case wire.Interested:
			w.Unchoke()
		case wire.Request:
			off := int(m.Index)*s.wt.pieceLength + int(m.Begin)
			copy(w.PieceBuffer(m.Index, m.Begin, int(m.Length)), s.payload[off:off+int(m.Length)])
			s.mu.Lock()
			s.served += int(m.Length)
			s.mu.Unlock()
		}
		// Batch: flush once nothing more is waiting to be read.
		if c.Reader.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// snapshot returns what the server recorded.
func (s *wireServer) snapshot() (cryptos []wire.Crypto, errs []error, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.cryptos), slices.Clone(s.errs), s.served
}

// TestWireAcceptLibtorrent: libtorrent downloads a whole payload from a server built on
// wire.Accept (it connects straight to it with --peer). libtorrent tries MSE first and
// falls back to plaintext, so: prefer → an MSE connection; off → its MSE attempt refused
// (ErrEncryptionDisabled), then plaintext; require → MSE with RC4.
func TestWireAcceptLibtorrent(t *testing.T) {
	requireLibtorrent(t)
	for _, tc := range []struct {
		enc  wire.Encryption
		want []wire.Crypto
	}{
		{wire.Prefer, []wire.Crypto{wire.Obfuscated, wire.RC4}},
		{wire.Off, []wire.Crypto{wire.Plaintext}},
		{wire.Require, []wire.Crypto{wire.RC4}},
	} {
		t.Run(tc.enc.String(), func(t *testing.T) {
			wt, _, payload := wireMakeTorrent(t, 12*32<<10+777, "")
			s := wireStartServer(t, "127.0.0.1", tc.enc, wt, payload)
			out := t.TempDir()
			port := testenv.FreePort(t, "127.0.0.34")
			args := append(libtorrentArgs(t, "get", wt.path, out, "127.0.0.34", port, 60*time.Second),
				"--peer", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port())))
			waitClient(t, testenv.Start(t, systemPython, args...), "libtorrent get from wire.Accept", 90*time.Second)
			sameFile(t, filepath.Join(out, "wire.bin"), payload)
			cryptos, errs, served := s.snapshot()
			t.Logf("connections %v, refused %v, served %d bytes", cryptos, errs, served)
			if len(cryptos) == 0 || !slices.Contains(tc.want, cryptos[len(cryptos)-1]) {
				t.Fatalf("crypto %v, want one of %v", cryptos, tc.want)
			}
			if tc.enc == wire.Off && !slices.ContainsFunc(errs, func(err error) bool { return errors.Is(err, wire.ErrEncryptionDisabled) }) {
				t.Fatalf("libtorrent's MSE attempt was not refused with ErrEncryptionDisabled (errors %v)", errs)
			}
		})
	}
}

// TestWireAcceptAria2: aria2 finds a wire.Accept server through the tracker and downloads a
// whole payload from it: an aria2 that requires encryption (--bt-require-crypto=true)
// against our prefer policy, and a default aria2 against our require policy.
func TestWireAcceptAria2(t *testing.T) {
	aria2c := testenv.Require(t, "aria2c", "aria2")
	for _, tc := range []struct {
		name  string
		enc   wire.Encryption
		extra []string
		want  []wire.Crypto
	}{
		{"aria2-require-crypto", wire.Prefer, []string{"--bt-require-crypto=true"}, []wire.Crypto{wire.Obfuscated, wire.RC4}},
		{"aria2-arc4-only", wire.Prefer, []string{"--bt-require-crypto=true", "--bt-min-crypto-level=arc4"}, []wire.Crypto{wire.RC4}},
		{"we-require", wire.Require, nil, []wire.Crypto{wire.RC4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := startTracker(t)
			wt, _, payload := wireMakeTorrent(t, 12*32<<10+777, tp.Announce)
			s := wireStartServer(t, "127.0.0.1", tc.enc, wt, payload)
			if _, err := announce(tp.Announce, announceQuery(wt.infoHash, "-WS0001-wire-e2e-000", s.port(), 0, "compact=1", "event=started")); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			bindIP := "127.0.0.36"
			args := append(aria2Args(out, bindIP, testenv.FreePort(t, bindIP)), "--seed-ratio=0.0", "--seed-time=0")
			args = append(append(args, tc.extra...), wt.path)
			waitClient(t, testenv.Start(t, aria2c, args...), "aria2c get from wire.Accept", 90*time.Second)
			sameFile(t, filepath.Join(out, "wire.bin"), payload)
			cryptos, errs, served := s.snapshot()
			t.Logf("connections %v, refused %v, served %d bytes", cryptos, errs, served)
			if len(cryptos) == 0 || !slices.Contains(tc.want, cryptos[len(cryptos)-1]) {
				t.Fatalf("crypto %v, want one of %v", cryptos, tc.want)
			}
		})
	}
}
