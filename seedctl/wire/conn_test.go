package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

var (
	testHash  = bittorrent.InfoHash{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	otherHash = bittorrent.InfoHash{0: 0xee, 19: 0xff}
)

func testConfig(id byte, enc Encryption, served ...bittorrent.InfoHash) *Config {
	cfg := &Config{Reserved: DefaultReserved, Encryption: enc}
	copy(cfg.PeerID[:], fmt.Sprintf("-WS0001-%012d", id))
	cfg.Known = func(ih bittorrent.InfoHash) bool { return slices.Contains(served, ih) }
	cfg.InfoHashes = slices.Values(served)
	return cfg
}

type acceptResult struct {
	c   *Conn
	err error
}

// listen starts a loopback listener that runs Accept with cfg on one connection.
func listen(t *testing.T, cfg *Config) (string, <-chan acceptResult) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan acceptResult, 1)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			ch <- acceptResult{err: err}
			return
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		c, err := Accept(conn, cfg)
		if err != nil {
			conn.Close()
		} else {
			t.Cleanup(func() { conn.Close() })
		}
		ch <- acceptResult{c, err}
	}()
	return l.Addr().String(), ch
}

func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestHandshakePolicies(t *testing.T) {
	const fail = Crypto(-1)
	tests := []struct {
		out, in Encryption
		rc4     bool // acceptor prefers RC4
		want    Crypto
		inErr   error // the acceptor's error when want is fail
		outErr  error
		viaDial Crypto // Dial's result (with Prefer's plaintext fallback)
	}{
		{Off, Off, false, Plaintext, nil, nil, Plaintext},
		{Off, Prefer, false, Plaintext, nil, nil, Plaintext},
		{Off, Require, false, fail, ErrEncryptionRequired, nil, fail},
		{Prefer, Off, false, fail, ErrEncryptionDisabled, ErrMSE, Plaintext},
		{Prefer, Prefer, false, Obfuscated, nil, nil, Obfuscated},
		{Prefer, Prefer, true, RC4, nil, nil, RC4},
		{Prefer, Require, false, RC4, nil, nil, RC4},
		{Require, Off, false, fail, ErrEncryptionDisabled, ErrMSE, fail},
		{Require, Prefer, false, RC4, nil, nil, RC4},
		{Require, Require, false, RC4, nil, nil, RC4},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v-to-%v-rc4=%v", tc.out, tc.in, tc.rc4), func(t *testing.T) {
			inCfg := testConfig(1, tc.in, otherHash, testHash)
			inCfg.PreferRC4 = tc.rc4
			outCfg := testConfig(2, tc.out)

			addr, accepted := listen(t, inCfg)
			conn := dialRaw(t, addr)
			out, outErr := Initiate(conn, outCfg, testHash)
			if outErr != nil {
				conn.Close() // unblock the acceptor
			}
			in := <-accepted
			if tc.want == fail {
				if !errors.Is(in.err, tc.inErr) {
					t.Fatalf("Accept: %v, want %v", in.err, tc.inErr)
				}
				if outErr == nil {
					t.Fatal("Initiate succeeded")
				}
				if tc.outErr != nil && !errors.Is(outErr, tc.outErr) {
					t.Fatalf("Initiate: %v, want %v", outErr, tc.outErr)
				}
			} else {
				if in.err != nil || outErr != nil {
					t.Fatalf("Accept: %v; Initiate: %v", in.err, outErr)
				}
				if in.c.Crypto != tc.want || out.Crypto != tc.want {
					t.Fatalf("crypto: acceptor %v, initiator %v, want %v", in.c.Crypto, out.Crypto, tc.want)
				}
				checkPair(t, out, in.c, outCfg, inCfg)
			}

			// Dial: the same with Prefer's fallback.
			addr, accepted = listen(t, inCfg)
			if tc.out == Prefer && tc.in == Off {
				// The refused MSE attempt takes the first listener's connection; the
				// fallback needs a second one.
				addr, accepted = listenTwice(t, inCfg)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			dc, err := Dial(ctx, nil, addr, outCfg, testHash)
			if tc.viaDial == fail {
				if err == nil {
					t.Fatal("Dial succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer dc.Close()
			in = <-accepted
			if in.err != nil || dc.Crypto != tc.viaDial || in.c.Crypto != tc.viaDial {
				t.Fatalf("Dial: %v/%v, acceptor %v, want %v", dc.Crypto, in.c, in.err, tc.viaDial)
			}
			checkPair(t, dc, in.c, outCfg, inCfg)
		})
	}
}

// listenTwice serves two connections with Accept on one listener and returns its address
// and the second one's result.
func listenTwice(t *testing.T, cfg *Config) (string, <-chan acceptResult) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan acceptResult, 1)
	go func() {
		for i := range 2 {
			conn, err := l.Accept()
			if err != nil {
				ch <- acceptResult{err: err}
				return
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			c, err := Accept(conn, cfg)
			if err != nil {
				conn.Close()
			}
			if i == 1 {
				ch <- acceptResult{c, err}
			}
		}
	}()
	return l.Addr().String(), ch
}

// checkPair checks both handshakes and passes messages both ways.
func checkPair(t *testing.T, out, in *Conn, outCfg, inCfg *Config) {
	t.Helper()
	if out.Peer.PeerID != inCfg.PeerID || in.Peer.PeerID != outCfg.PeerID {
		t.Fatalf("peer ids: initiator saw %v, acceptor saw %v", out.Peer.PeerID, in.Peer.PeerID)
	}
	if out.Peer.InfoHash != testHash || in.Peer.InfoHash != testHash {
		t.Fatal("info-hash")
	}
	if !out.Peer.Reserved.Fast() || !out.Peer.Reserved.Extended() || in.Peer.Reserved.DHT() {
		t.Fatalf("reserved % x", out.Peer.Reserved)
	}
	if !out.Outgoing || in.Outgoing {
		t.Fatal("Outgoing")
	}
	l := out.Limits(outCfg.Reserved)
	if !l.Fast || !l.Extended {
		t.Fatalf("limits %+v", l)
	}
	block := make([]byte, BlockSize)
	for i := range block {
		block[i] = byte(i)
	}
	done := make(chan error, 1)
	go func() {
		w := NewWriter(in.Writer)
		w.HaveAll()
		w.Piece(1, 0, block)
		done <- w.Flush()
	}()
	r := NewReader(out.Reader, l)
	var m Message
	if err := r.Read(&m); err != nil || m.ID != HaveAll {
		t.Fatalf("first message %v: %v", m.ID, err)
	}
	if err := r.Read(&m); err != nil || m.ID != Piece || string(m.Block) != string(block) {
		t.Fatalf("second message %v: %v", m.ID, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w := NewWriter(out.Writer)
	w.Request(1, 0, BlockSize)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r = NewReader(in.Reader, in.Limits(inCfg.Reserved))
	if err := r.Read(&m); err != nil || m.ID != Request || m.Length != BlockSize {
		t.Fatalf("request %+v: %v", m, err)
	}
}

func TestAcceptUnknownInfoHash(t *testing.T) {
	for _, enc := range []Encryption{Off, Require} {
		t.Run(enc.String(), func(t *testing.T) {
			addr, accepted := listen(t, testConfig(1, Prefer, otherHash))
			conn := dialRaw(t, addr)
			_, err := Initiate(conn, testConfig(2, enc), testHash)
			if err == nil {
				t.Fatal("Initiate succeeded")
			}
			in := <-accepted
			want := ErrUnknownInfoHash
			if enc != Off {
				want = ErrMSE // MSE finds no matching secret: the hash never shows
			}
			if !errors.Is(in.err, want) {
				t.Fatalf("Accept: %v, want %v", in.err, want)
			}
		})
	}
}

func TestAcceptMSEWithoutInfoHashes(t *testing.T) {
	cfg := testConfig(1, Prefer, testHash)
	cfg.InfoHashes = nil
	addr, accepted := listen(t, cfg)
	conn := dialRaw(t, addr)
	go Initiate(conn, testConfig(2, Require), testHash)
	if in := <-accepted; !errors.Is(in.err, ErrMSE) {
		t.Fatalf("Accept: %v", in.err)
	}
}

func TestSelfConnection(t *testing.T) {
	cfg := testConfig(1, Off, testHash)
	addr, accepted := listen(t, cfg)
	_, err := Initiate(dialRaw(t, addr), cfg, testHash)
	if !errors.Is(err, ErrSelfConnection) {
		t.Fatalf("Initiate: %v", err)
	}
	if in := <-accepted; !errors.Is(in.err, ErrSelfConnection) {
		t.Fatalf("Accept: %v", in.err)
	}
}

// fakePeer accepts one connection and answers whatever reply holds.
func fakePeer(t *testing.T, reply []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write(reply)
		io.Copy(io.Discard, io.LimitReader(conn, HandshakeLen))
	}()
	return l.Addr().String()
}

func TestInitiateBadAnswers(t *testing.T) {
	good := AppendHandshake(nil, &Handshake{InfoHash: testHash, PeerID: bittorrent.PeerID{1}})
	wrongHash := AppendHandshake(nil, &Handshake{InfoHash: otherHash})
	garbage := append([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"), make([]byte, 60)...)
	tests := []struct {
		name  string
		reply []byte
		want  error
	}{
		{"not bittorrent", garbage, ErrBadProtocol},
		{"other torrent", wrongHash, ErrUnknownInfoHash},
		{"cut short", good[:40], io.ErrUnexpectedEOF},
		{"no peer id", good[:48], io.EOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Initiate(dialRaw(t, fakePeer(t, tc.reply)), testConfig(2, Off), testHash)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Initiate: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestAcceptTimeout: a peer that connects and says nothing is cut by the caller's deadline.
func TestAcceptTimeout(t *testing.T) {
	for _, first := range [][]byte{nil, []byte{0x13, 'B'}, make([]byte, 40)} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		conn := dialRaw(t, l.Addr().String())
		conn.Write(first)
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sc.SetDeadline(time.Now().Add(100 * time.Millisecond))
		_, err = Accept(sc, testConfig(1, Prefer, testHash))
		sc.Close()
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("first bytes % x: Accept: %v, want a deadline error", first, err)
		}
	}
}

func TestDialCancelled(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // accept and stay silent
		c, err := l.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Dial(ctx, nil, l.Addr().String(), testConfig(2, Off), testHash); err == nil {
		t.Fatal("Dial succeeded")
	}
}

func TestParseEncryption(t *testing.T) {
	for _, e := range []Encryption{Prefer, Require, Off} {
		got, err := ParseEncryption(e.String())
		if err != nil || got != e {
			t.Fatalf("%v: %v %v", e, got, err)
		}
	}
	if _, err := ParseEncryption("forced"); err == nil {
		t.Fatal("forced accepted")
	}
	for _, c := range []Crypto{Plaintext, Obfuscated, RC4} {
		if c.String() == "" {
			t.Fatal(c)
		}
	}
}

// TestAcceptGarbage: bytes that are neither a BitTorrent handshake nor MSE fail the MSE
// handshake once its padding allowance is exhausted, before any deadline.
func TestAcceptGarbage(t *testing.T) {
	addr, accepted := listen(t, testConfig(1, Prefer, testHash))
	conn := dialRaw(t, addr)
	garbage := make([]byte, 2048)
	for i := range garbage {
		garbage[i] = byte(i*31 + 7)
	}
	go conn.Write(garbage)
	if in := <-accepted; !errors.Is(in.err, ErrMSE) {
		t.Fatalf("Accept: %v, want ErrMSE", in.err)
	}
}
