package wire

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"time"

	"github.com/anacrolix/torrent/mse"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

// Encryption is the MSE/PE policy (seedctl --encryption).
type Encryption int

// Policies.
const (
	// Prefer offers MSE on outgoing connections (falling back to plaintext through Dial
	// when the peer refuses it) and accepts both plaintext and MSE incoming ones.
	Prefer Encryption = iota
	// Require speaks MSE with RC4 only, both ways: plaintext peers and peers that offer
	// only header obfuscation are refused (ErrEncryptionRequired).
	Require
	// Off speaks plaintext only: incoming MSE is refused (ErrEncryptionDisabled).
	Off
)

// String returns the policy's flag value.
func (e Encryption) String() string {
	switch e {
	case Prefer:
		return "prefer"
	case Require:
		return "require"
	case Off:
		return "off"
	}
	return fmt.Sprintf("Encryption(%d)", int(e))
}

// ParseEncryption parses "prefer", "require" or "off".
func ParseEncryption(s string) (Encryption, error) {
	for _, e := range []Encryption{Prefer, Require, Off} {
		if s == e.String() {
			return e, nil
		}
	}
	return 0, fmt.Errorf("wire: encryption %q: want prefer, require or off", s)
}

// Crypto is what protects a connection once the handshake is done.
type Crypto int

// Crypto methods.
const (
	// Plaintext: a BEP 3 handshake, no MSE.
	Plaintext Crypto = iota
	// Obfuscated: an MSE handshake, then plaintext (MSE's crypto_plaintext): hides the
	// handshake from simple filters, costs nothing afterwards.
	Obfuscated
	// RC4: an MSE handshake, then the whole stream RC4-encrypted.
	RC4
)

// String names the method, for logs and bounded metric labels.
func (c Crypto) String() string {
	switch c {
	case Plaintext:
		return "plaintext"
	case Obfuscated:
		return "obfuscated"
	case RC4:
		return "rc4"
	}
	return fmt.Sprintf("Crypto(%d)", int(c))
}

// Config is what Accept, Initiate and Dial need to know about us. It is read-only for
// them: one Config serves every connection, so Known and InfoHashes are called from many
// goroutines at once and must be safe for that.
type Config struct {
	// PeerID is ours.
	PeerID bittorrent.PeerID
	// Reserved are the bits we send, usually DefaultReserved.
	Reserved Reserved
	// Encryption is the MSE policy.
	Encryption Encryption
	// PreferRC4 makes an incoming MSE peer that offers both methods get RC4 rather than
	// header obfuscation only. Off by default, as libtorrent's prefer_rc4: RC4 costs CPU on
	// every byte seeded and protects nothing that header obfuscation does not hide.
	PreferRC4 bool
	// Known reports whether we serve a torrent: Accept refuses any other info-hash.
	Known func(bittorrent.InfoHash) bool
	// InfoHashes lists every torrent we serve. Accept needs it for incoming MSE only: the
	// peer proves which torrent it wants by a hash of the info-hash, found by trying each
	// (a cost linear in the number of torrents, per encrypted incoming connection). Nil
	// means incoming MSE is refused.
	InfoHashes iter.Seq[bittorrent.InfoHash]
	// ReadBufferSize is the size of the Conn's bufio.Reader; 0 means 64 KiB (four blocks,
	// so a PIECE is usually read with one system call).
	ReadBufferSize int
}

func (c *Config) readBufferSize() int {
	if c.ReadBufferSize > 0 {
		return c.ReadBufferSize
	}
	return 64 << 10
}

// Conn is a connection after a successful handshake. Read through Reader and write
// through Writer only: under MSE the network connection carries ciphertext, which is why it
// is not embedded (its Read and Write are not promoted).
type Conn struct {
	conn net.Conn
	// Reader is the inbound stream after the handshake, decrypted.
	Reader *bufio.Reader
	// Writer is the outbound stream, encrypting when Crypto is RC4. Give it whole messages
	// (Writer.Flush does): a short write leaves the RC4 stream broken.
	Writer io.Writer
	// Peer is the peer's handshake.
	Peer Handshake
	// Crypto is what protects the connection.
	Crypto Crypto
	// Outgoing is true for connections we opened.
	Outgoing bool
}

// NetConn returns the network connection, for what Conn does not forward (TCP options).
// Never read from or write to it.
func (c *Conn) NetConn() net.Conn { return c.conn }

// Close closes the network connection.
func (c *Conn) Close() error { return c.conn.Close() }

// SetDeadline sets the network connection's read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the network connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the network connection's write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// RemoteAddr is the peer's address (for an incoming peer, not its listen port: see the
// extended handshake's P).
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// LocalAddr is our end's address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// Limits returns reader limits with the extension bits both sides set: Fast and Extended
// are on only when ours (cfg.Reserved) and the peer's both are.
func (c *Conn) Limits(ours Reserved) Limits {
	return Limits{
		Fast:     ours.Fast() && c.Peer.Reserved.Fast(),
		Extended: ours.Extended() && c.Peer.Reserved.Extended(),
	}
}

type readWriter struct {
	io.Reader
	io.Writer
}

// Accept runs the receiving side of the handshake on an incoming connection: it tells a
// plaintext handshake (19 "BitTorrent protocol") from MSE by the first bytes, runs MSE if
// the policy allows, checks the info-hash against cfg.Known, sends our handshake and reads
// the peer's ID. The caller sets a deadline on conn first (and clears it or sets a new one
// afterwards); on error the caller closes conn.
func Accept(conn net.Conn, cfg *Config) (*Conn, error) {
	// A small buffer to look at the first bytes; the stream's real buffer goes on top of it
	// once the kind of handshake is known (large reads pass straight through this one).
	raw := bufio.NewReaderSize(conn, 512)
	head, err := raw.Peek(len(protocol))
	if err != nil {
		return nil, fmt.Errorf("wire: read handshake: %w", err)
	}
	c := &Conn{conn: conn, Writer: conn, Crypto: Plaintext}
	var mseHash *bittorrent.InfoHash
	if string(head) != protocol {
		if cfg.Encryption == Off {
			return nil, fmt.Errorf("%w (first byte %#02x)", ErrEncryptionDisabled, head[0])
		}
		ih, err := c.receiveMSE(cfg, raw)
		if err != nil {
			return nil, err
		}
		mseHash = &ih
	} else if cfg.Encryption == Require {
		return nil, ErrEncryptionRequired
	} else {
		c.Reader = bufio.NewReaderSize(raw, cfg.readBufferSize())
	}
	if err := readHandshakeHead(c.Reader, &c.Peer); err != nil {
		return nil, err
	}
	if mseHash != nil && c.Peer.InfoHash != *mseHash {
		return nil, fmt.Errorf("%w: %v in the handshake, %v in MSE", ErrUnknownInfoHash, c.Peer.InfoHash, *mseHash)
	}
	if cfg.Known == nil || !cfg.Known(c.Peer.InfoHash) {
		return nil, fmt.Errorf("%w: %v", ErrUnknownInfoHash, c.Peer.InfoHash)
	}
	hs := AppendHandshake(make([]byte, 0, HandshakeLen), &Handshake{Reserved: cfg.Reserved, InfoHash: c.Peer.InfoHash, PeerID: cfg.PeerID})
	if _, err := c.Writer.Write(hs); err != nil {
		return nil, fmt.Errorf("wire: write handshake: %w", err)
	}
	if err := readPeerID(c.Reader, &c.Peer); err != nil {
		return nil, err
	}
	if c.Peer.PeerID == cfg.PeerID {
		return nil, ErrSelfConnection
	}
	return c, nil
}

// receiveMSE runs the MSE receiver and leaves c's Reader and Writer on the negotiated
// stream; it returns the info-hash the peer proved it knows.
func (c *Conn) receiveMSE(cfg *Config, raw *bufio.Reader) (bittorrent.InfoHash, error) {
	var ih bittorrent.InfoHash
	if cfg.InfoHashes == nil {
		return ih, fmt.Errorf("%w: no info-hashes to match", ErrMSE)
	}
	// mse stops iterating at the key that matches: the last one tried is the torrent.
	found := false
	skeys := func(try func(skey []byte) bool) {
		for h := range cfg.InfoHashes {
			if !try(h[:]) {
				ih, found = h, true
				return
			}
		}
	}
	var offered mse.CryptoMethod
	choose := func(provided mse.CryptoMethod) mse.CryptoMethod {
		offered = provided
		switch {
		case cfg.Encryption == Require:
			return provided & mse.CryptoMethodRC4 // 0 fails the handshake
		case provided&mse.CryptoMethodPlaintext != 0 && (!cfg.PreferRC4 || provided&mse.CryptoMethodRC4 == 0):
			return mse.CryptoMethodPlaintext
		}
		return provided & mse.CryptoMethodRC4
	}
	// The context only wraps the handshake's own reads and writes; the deadline the caller
	// set on the connection is what bounds them.
	rw, method, err := mse.ReceiveHandshake(context.Background(), readWriter{raw, c.conn}, skeys, choose)
	if err != nil {
		if cfg.Encryption == Require && offered != 0 && offered&mse.CryptoMethodRC4 == 0 {
			return ih, fmt.Errorf("%w: MSE peer offers no RC4 (%w)", ErrEncryptionRequired, err)
		}
		return ih, fmt.Errorf("%w: %w", ErrMSE, err)
	}
	if !found {
		return ih, fmt.Errorf("%w: no info-hash matched", ErrMSE)
	}
	c.Crypto = Obfuscated
	if method == mse.CryptoMethodRC4 {
		c.Crypto = RC4
	}
	c.Reader = bufio.NewReaderSize(rw, cfg.readBufferSize())
	c.Writer = rw
	return ih, nil
}

// Initiate runs the initiating side of the handshake for torrent ih on an outgoing
// connection: MSE first unless the policy is Off (our BEP 3 handshake rides in MSE's
// initial payload, saving a round trip), then the BEP 3 handshake, whose info-hash must be
// ih. The caller sets a deadline on conn first; on error the caller closes conn. With
// Prefer, a peer that refuses MSE fails here: Dial retries it in plaintext.
func Initiate(conn net.Conn, cfg *Config, ih bittorrent.InfoHash) (*Conn, error) {
	c := &Conn{conn: conn, Writer: conn, Crypto: Plaintext, Outgoing: true}
	hs := AppendHandshake(make([]byte, 0, HandshakeLen), &Handshake{Reserved: cfg.Reserved, InfoHash: ih, PeerID: cfg.PeerID})
	var rd io.Reader = conn
	if cfg.Encryption == Off {
		if _, err := conn.Write(hs); err != nil {
			return nil, fmt.Errorf("wire: write handshake: %w", err)
		}
	} else {
		provide := mse.CryptoMethodRC4
		if cfg.Encryption == Prefer {
			provide |= mse.CryptoMethodPlaintext
		}
		rw, method, err := mse.InitiateHandshake(conn, ih[:], hs, provide)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrMSE, err)
		}
		c.Crypto = Obfuscated
		if method == mse.CryptoMethodRC4 {
			c.Crypto = RC4
		}
		rd, c.Writer = rw, rw
	}
	c.Reader = bufio.NewReaderSize(rd, cfg.readBufferSize())
	if err := readHandshakeHead(c.Reader, &c.Peer); err != nil {
		return nil, err
	}
	if c.Peer.InfoHash != ih {
		return nil, fmt.Errorf("%w: asked for %v, peer answered %v", ErrUnknownInfoHash, ih, c.Peer.InfoHash)
	}
	if err := readPeerID(c.Reader, &c.Peer); err != nil {
		return nil, err
	}
	if c.Peer.PeerID == cfg.PeerID {
		return nil, ErrSelfConnection
	}
	return c, nil
}

// Dial connects to addr over TCP and runs Initiate, with the connection's deadline taken
// from ctx (cleared on success: the session sets its own). With the Prefer policy, a peer
// that fails the MSE handshake is dialled again and spoken to in plaintext, as libtorrent
// and aria2 do. On error the connection is closed.
func Dial(ctx context.Context, d *net.Dialer, addr string, cfg *Config, ih bittorrent.InfoHash) (*Conn, error) {
	c, err := dialOnce(ctx, d, addr, cfg, ih)
	if err != nil && cfg.Encryption == Prefer && errors.Is(err, ErrMSE) && ctx.Err() == nil {
		plain := *cfg
		plain.Encryption = Off
		c, err = dialOnce(ctx, d, addr, &plain, ih)
	}
	return c, err
}

func dialOnce(ctx context.Context, d *net.Dialer, addr string, cfg *Config, ih bittorrent.InfoHash) (*Conn, error) {
	if d == nil {
		d = &net.Dialer{}
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("wire: dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// A cancelled ctx interrupts a handshake in progress by expiring the deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	c, err := Initiate(conn, cfg, ih)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = fmt.Errorf("wire: dial: %w", context.Cause(ctx))
		}
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return c, nil
}
