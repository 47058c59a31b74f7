package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/webswarm/webswarm/internal/bittorrent"
	"github.com/webswarm/webswarm/internal/subnet"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/session/choker"
	"github.com/webswarm/webswarm/seedctl/storage"
	"github.com/webswarm/webswarm/seedctl/wire"
)

// payload is the torrent's data: *storage.Files.
type payload interface {
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	SendWithPrefix(w io.Writer, prefix []byte, off, n int64) (int64, error)
}

var _ payload = (*storage.Files)(nil)

// Stats is a snapshot of a torrent's progress and traffic.
type Stats struct {
	// Have is the number of verified pieces, of NumPieces.
	Have, NumPieces int
	// Left is the number of payload bytes still missing (the announce's left).
	Left int64
	// Uploaded and Downloaded are payload bytes since New.
	Uploaded, Downloaded int64
	// UploadRate and DownloadRate are bytes per second, averaged over a few seconds.
	UploadRate, DownloadRate int64
	// Peers is the number of connections; Seeds how many of them have every piece;
	// WebRTCPeers how many of them are WebRTC data channels (the rest are TCP).
	Peers, Seeds, WebRTCPeers int
	// HashFails is the number of downloaded pieces that failed their check.
	HashFails int
	// Rechecking: payload files changed while seeding and their pieces are being hashed
	// again (Have counts only the pieces verified).
	Rechecking bool
}

// Torrent is one torrent in a swarm: create it with New, run it with Run.
type Torrent struct {
	mi        *metafile.Torrent
	data      payload
	cfg       Config
	ih        bittorrent.InfoHash
	numPieces int
	log       *slog.Logger
	sendMode  sendMode  // how blocks reach a plaintext TCP peer
	sendBufs  sync.Pool // *vecBuf: the sendVectored buffers, held only while writing
	// Timings, fixed but for tests.
	idle, snubAfter, rechokeEvery time.Duration
	webBackoff                    time.Duration // first back-off of a failing web seed

	have       *atomicBits // verified pieces, read by every reader
	uploaded   atomic.Int64
	downloaded atomic.Int64
	upLimit    *rate.Limiter // per torrent
	downLimit  *rate.Limiter
	validReq   func(index, begin, length uint32) bool
	dlState    *blockClaims // nil when the torrent started complete
	started    atomic.Bool
	done       chan struct{} // closed when every piece is verified
	doneOnce   sync.Once
	quit       chan struct{} // closed when Run stops: nobody reports to the loop any more
	wg         sync.WaitGroup
	incoming   chan *wire.Conn
	events     chan event
	dialled    chan dialResult
	statsMu    sync.Mutex
	stats      Stats
	ctx        context.Context // Run's
	addrMu     sync.Mutex
	addrQueue  []netip.AddrPort // from AddPeers, for the loop
	addrWake   chan struct{}    // cap 1

	// loop
	peers      []*peer
	byID       map[bittorrent.PeerID]*peer
	byAddr     map[netip.AddrPort]*peer
	dialling   map[netip.AddrPort]struct{}
	known      map[netip.AddrPort]struct{}
	candidates []netip.AddrPort
	self       map[netip.AddrPort]struct{}
	banned     map[netip.Addr]struct{}
	choker     *choker.Choker
	chk        []choker.Peer
	lastChoke  time.Time
	upRate     rateMeter
	downRate   rateMeter
	dl         *download
	pw         *payloadWatch // finds payload files changed under a seed; nil unless complete at start
}

// event is what a reader (or a web seed) reports to the loop.
type event struct {
	p                    *peer
	id                   wire.ID
	index, begin, length uint32
	data                 []byte // BITFIELD or extended payload (a copy)
	extID                byte
	ok                   bool  // PIECE: the block landed in the piece being assembled
	err                  error // evGone
}

// Events that are not messages: a reader that stopped (the connection is closed), and the
// ring of a reader whose inbox became non-empty.
const (
	evGone  wire.ID = -2
	evInbox wire.ID = -3
)

type dialResult struct {
	addr netip.AddrPort
	c    *wire.Conn
	err  error
}

// Limits on queued peer addresses.
const maxCandidates = 2000

// New returns a Torrent for mi with its payload f (opened for writing when pieces are
// missing) and the pieces already verified (have: a zero Bitfield means none). Nothing
// happens until Run.
func New(mi *metafile.Torrent, f *storage.Files, have wire.Bitfield, cfg Config) (*Torrent, error) {
	if f == nil {
		return nil, fmt.Errorf("%w: no payload files", ErrConfig)
	}
	return newTorrent(mi, f, have, cfg)
}

func newTorrent(mi *metafile.Torrent, data payload, have wire.Bitfield, cfg Config) (*Torrent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if !mi.HasV1 {
		return nil, fmt.Errorf("%w: %s is a v2-only torrent (BEP 52); only the v1 wire protocol is spoken", ErrConfig, mi.Name)
	}
	n := mi.Layout.NumPieces()
	if have.Len() == 0 {
		have = wire.NewBitfield(n)
	}
	if have.Len() != n {
		return nil, fmt.Errorf("%w: have-set of %d pieces for a torrent of %d", ErrConfig, have.Len(), n)
	}
	t := &Torrent{
		mi:           mi,
		data:         data,
		cfg:          cfg,
		ih:           bittorrent.InfoHash(mi.InfoHash),
		numPieces:    n,
		log:          cfg.Logger.With("torrent", mi.Name),
		sendMode:     sendFile, // sendVectored costs less CPU but was slower on the wall clock (performance.md)
		idle:         IdleTimeout,
		snubAfter:    SnubTimeout,
		rechokeEvery: choker.RechokeInterval,
		webBackoff:   webBackoffMin,
		have:         newAtomicBits(&have),
		upLimit:      limiter(cfg.TorrentUploadRate),
		downLimit:    limiter(cfg.TorrentDownloadRate),
		validReq:     wire.RequestCheck(mi.Layout.PieceLength, mi.Layout.Total),
		done:         make(chan struct{}),
		quit:         make(chan struct{}),
		incoming:     make(chan *wire.Conn),
		addrWake:     make(chan struct{}, 1),
		events:       make(chan event, 256),
		dialled:      make(chan dialResult),
		byID:         map[bittorrent.PeerID]*peer{},
		byAddr:       map[netip.AddrPort]*peer{},
		dialling:     map[netip.AddrPort]struct{}{},
		known:        map[netip.AddrPort]struct{}{},
		self:         map[netip.AddrPort]struct{}{},
		banned:       map[netip.Addr]struct{}{},
		choker:       choker.New(choker.Config{Slots: cfg.MaxUploads, Seed: cfg.ChokerSeed}),
	}
	if have.Full() {
		t.markDone()
		t.pw = newPayloadWatch(data, cfg.PayloadCheckInterval)
	} else {
		t.dlState = newBlockClaims()
		t.dl = newDownload(t, &have)
	}
	t.updateStats(time.Now())
	return t, nil
}

// InfoHash is the torrent's v1 info-hash.
func (t *Torrent) InfoHash() bittorrent.InfoHash { return t.ih }

// Done is closed once every piece is verified.
func (t *Torrent) Done() <-chan struct{} { return t.done }

func (t *Torrent) markDone() { t.doneOnce.Do(func() { close(t.done) }) }

func (t *Torrent) complete() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Have returns a copy of the verified pieces, for the resume record.
func (t *Torrent) Have() wire.Bitfield { return t.have.bitfield() }

// Stats returns a snapshot (rates and peer counts as of the last second).
func (t *Torrent) Stats() Stats {
	t.statsMu.Lock()
	s := t.stats
	t.statsMu.Unlock()
	s.Uploaded, s.Downloaded = t.uploaded.Load(), t.downloaded.Load()
	return s
}

// HandleConn hands the torrent an accepted connection for its info-hash (Serve does). The
// torrent owns c from then on; a torrent that is not running, or too busy to take it
// within HandshakeTimeout, closes it.
func (t *Torrent) HandleConn(c *wire.Conn) {
	timer := time.NewTimer(HandshakeTimeout)
	defer timer.Stop()
	select {
	case t.incoming <- c:
	case <-t.quit:
		t.cfg.Metrics.refuse(RefusedStopped)
		c.Close()
	case <-timer.C:
		t.cfg.Metrics.refuse(RefusedBusy)
		c.Close()
	}
}

// AddPeers gives the torrent addresses to connect to (from the announcer). They are dialled
// while the torrent has fewer than MaxInitiate peers; duplicates, banned addresses and our
// own are skipped. It never blocks.
func (t *Torrent) AddPeers(addrs []netip.AddrPort) {
	if len(addrs) == 0 {
		return
	}
	t.addrMu.Lock()
	if len(t.addrQueue) < maxCandidates {
		t.addrQueue = append(t.addrQueue, addrs[:min(len(addrs), maxCandidates-len(t.addrQueue))]...)
	}
	t.addrMu.Unlock()
	select {
	case t.addrWake <- struct{}{}:
	default:
	}
}

// report sends ev to the loop; false when the loop has stopped.
func (t *Torrent) report(ev event) bool {
	select {
	case t.events <- ev:
		return true
	case <-t.quit:
		return false
	}
}

// Run is the torrent's event loop. It returns when ctx is done, after closing every
// connection and stopping every goroutine the torrent started; the result is nil then.
// Run may be called once.
func (t *Torrent) Run(ctx context.Context) error {
	if !t.started.CompareAndSwap(false, true) {
		return errRunTwice
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.ctx = ctx
	if t.dl != nil {
		t.dl.start(ctx)
	}
	ticker := time.NewTicker(min(time.Second, t.rechokeEvery))
	defer ticker.Stop()
	t.lastChoke = time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case c := <-t.incoming:
			t.addConn(c, netip.AddrPort{})
		case <-t.addrWake:
			t.addrMu.Lock()
			addrs := t.addrQueue
			t.addrQueue = nil
			t.addrMu.Unlock()
			t.addCandidates(addrs)
			t.dialMore()
		case r := <-t.dialled:
			t.onDialled(r)
		case ev := <-t.events:
			t.handle(ev)
		case r := <-t.verified():
			t.dl.onVerified(r)
		case r := <-t.runs():
			t.dl.onRun(r)
		case now := <-ticker.C:
			t.tick(now)
		case <-t.nudged():
			t.checkPayload(time.Now())
		case r := <-t.rechecked():
			t.onRechecked(r)
		}
	}
	close(t.quit)
	cancel()
	for _, p := range t.peers {
		p.close(errClosing)
		t.cfg.Metrics.peerDown(p.webrtc)
	}
	t.peers = nil
	t.wg.Wait()
	if t.dl != nil {
		t.dl.closeWebSeeds()
	}
	return nil
}

// verified is the channel of piece checks, nil (never ready) for a complete torrent.
func (t *Torrent) verified() <-chan verifyResult {
	if t.dl == nil {
		return nil
	}
	return t.dl.results
}

// runs is the channel of finished web-seed runs, nil (never ready) for a complete torrent.
func (t *Torrent) runs() <-chan runResult {
	if t.dl == nil {
		return nil
	}
	return t.dl.webResults
}

// addConn starts a connection that finished its handshake; dialAddr is the address we
// dialled (zero for an incoming one).
func (t *Torrent) addConn(c *wire.Conn, dialAddr netip.AddrPort) {
	refuse := func(reason string) {
		t.cfg.Metrics.refuse(reason)
		c.Close()
	}
	p := newPeer(t, c)
	old := t.byID[p.id]
	switch {
	case t.isBanned(p.addr.Addr()):
		refuse(RefusedBanned)
		return
	case old != nil && !t.replaces(p, old):
		refuse(RefusedDuplicate)
		return
	case old == nil && len(t.peers) >= t.cfg.MaxConns:
		refuse(RefusedTorrentLimit)
		return
	case old == nil && t.connsFrom(p.addr.Addr()) >= t.cfg.MaxConnsPerIP:
		refuse(RefusedIPLimit)
		return
	}
	if old != nil {
		t.cfg.Metrics.refuse(RefusedDuplicate)
		t.dropPeer(old, errDuplicate)
	}
	p.dialAddr = dialAddr
	// A new peer queues for a seeding slot behind those that were waiting before it
	// came: with the zero time ("never unchoked") a peer that hogged a slot and
	// reconnects would rank first.
	p.chk.UnchokedAt = p.connected
	c.SetDeadline(time.Time{}) // the handshake's; the reader and writer set their own
	t.peers = append(t.peers, p)
	t.byID[p.id] = p
	if dialAddr.IsValid() {
		t.byAddr[dialAddr] = p
	}
	t.cfg.Metrics.peerUp(c.Outgoing, p.webrtc)
	t.log.Debug("peer connected", "peer", p, "outgoing", c.Outgoing, "crypto", c.Crypto, "client", bittorrent.ClientFamily(p.id))

	// BEP 3: the BITFIELD (or BEP 6's HAVE ALL / HAVE NONE) comes first.
	have := t.have.bitfield()
	switch {
	case p.fast && have.Full():
		p.queueMsg(&wire.Message{ID: wire.HaveAll})
	case p.fast && have.Count() == 0:
		p.queueMsg(&wire.Message{ID: wire.HaveNone})
	case have.Count() > 0:
		p.queueMsg(&wire.Message{ID: wire.BitfieldMsg, Bitfield: have.Bytes()})
	}
	if p.extended {
		p.queueMsg(&wire.Message{ID: wire.Extended, ExtendedID: 0, Payload: t.extHandshake(p)})
	}
	if p.fast && have.Count() > 0 {
		for _, i := range wire.AllowedFastSet(t.ih, p.addr.Addr(), t.numPieces, AllowedFastCount) {
			if have.Has(int(i)) {
				p.allowed = append(p.allowed, i)
				p.queueMsg(&wire.Message{ID: wire.AllowedFast, Index: i})
			}
		}
	}
	if t.dl != nil {
		t.dl.peerUp(p)
	}
	lim := wire.Limits{
		MaxBlock:     wire.BlockSize,
		NumPieces:    t.numPieces,
		ValidRequest: t.validReq,
		Fast:         p.fast,
		Extended:     p.extended,
	}
	t.wg.Add(2)
	go p.readLoop(lim)
	go p.writeLoop()
}

// replaces reports whether connection p should replace old, to the same peer ID. When two
// peers dial each other at once, each sees the other's connection as a duplicate of its
// own; both keep the one opened by the lower peer ID, so one survives rather than none.
// Two connections in the same direction: the first stays.
func (t *Torrent) replaces(p, old *peer) bool {
	if p.c.Outgoing == old.c.Outgoing {
		return false
	}
	if p.c.Outgoing {
		return bytes.Compare(t.cfg.PeerID[:], p.id[:]) < 0
	}
	return bytes.Compare(p.id[:], t.cfg.PeerID[:]) < 0
}

// ourUTMetadata is the id we receive ut_metadata messages with.
const ourUTMetadata = 1

func (t *Torrent) extHandshake(p *peer) []byte {
	h := wire.ExtendedHandshake{
		M:            map[string]int{wire.UTMetadata: ourUTMetadata},
		V:            "webswarm " + t.cfg.Version,
		Reqq:         ReqQ,
		P:            int(t.cfg.ListenPort),
		MetadataSize: len(t.mi.InfoBytes),
	}
	if p.addr.Addr().IsValid() {
		h.SetYourIP(p.addr.Addr())
	}
	b, err := h.Encode()
	if err != nil {
		panic(err) // a dictionary of known types always encodes
	}
	return b
}

// connsFrom counts the torrent's connections with a's address (see subnet.Of).
func (t *Torrent) connsFrom(a netip.Addr) int {
	if !a.IsValid() {
		return 0
	}
	k, n := subnet.Of(a), 0
	for _, p := range t.peers {
		if p.addr.Addr().IsValid() && subnet.Of(p.addr.Addr()) == k {
			n++
		}
	}
	return n
}

func (t *Torrent) isBanned(a netip.Addr) bool {
	_, ok := t.banned[a]
	return ok
}

// handle applies a reader's event.
func (t *Torrent) handle(ev event) {
	p := ev.p
	if ev.id == evInbox {
		in := p.takeInbox()
		for _, e := range in {
			t.handle(e)
		}
		p.doneInbox(in)
		return
	}
	if !slices.Contains(t.peers, p) {
		// Removed already (dropped by the loop: a duplicate connection, a ban): its last
		// messages do not matter — except a block its reader had already stored in a piece
		// buffer. That block is filled there and no other peer's copy can be stored; unless
		// the picker hears of it, it is asked for again and again and never done, and the
		// download stalls on it.
		if ev.id == wire.Piece && ev.ok && t.dl != nil && p.dl != nil {
			t.dl.onBlock(p, ev)
		}
		return
	}
	switch ev.id {
	case evGone:
		t.removePeer(p, ev.err)
		return
	case wire.Choke:
		p.peerChoking = true
	case wire.Unchoke:
		p.peerChoking = false
	case wire.Interested:
		if !p.interested {
			p.interested = true
			t.fill(time.Now())
		}
	case wire.NotInterested:
		p.interested = false
	case wire.Have:
		p.has.Set(int(ev.index))
	case wire.BitfieldMsg:
		if err := p.has.Replace(ev.data); err != nil {
			t.dropPeer(p, err)
			return
		}
	case wire.HaveAll:
		p.has.SetAll()
	case wire.HaveNone:
		p.has.ClearAll()
	case wire.Extended:
		t.onExtended(p, ev)
	}
	if t.complete() && p.has.Full() && p.utMetadata == 0 {
		// Two seeds have nothing to give each other.
		t.dropPeer(p, errClosing)
		return
	}
	if t.dl != nil {
		t.dl.onEvent(p, ev)
	}
}

// dropPeer closes p and removes it now (its reader's gone event is then ignored).
func (t *Torrent) dropPeer(p *peer, err error) {
	p.close(err)
	t.removePeer(p, err)
}

func (t *Torrent) removePeer(p *peer, err error) {
	i := slices.Index(t.peers, p)
	if i < 0 {
		return
	}
	t.peers = slices.Delete(t.peers, i, i+1)
	p.close(err)
	if t.byID[p.id] == p {
		delete(t.byID, p.id)
	}
	if p.dialAddr.IsValid() && t.byAddr[p.dialAddr] == p {
		delete(t.byAddr, p.dialAddr)
	}
	if r := hostileReason(err); r != "" {
		t.cfg.Metrics.hostileDisconnect(r)
		t.log.Debug("peer dropped", "peer", p, "reason", r, "err", err)
	} else {
		t.log.Debug("peer left", "peer", p, "err", err)
	}
	t.cfg.Metrics.peerDown(p.webrtc)
	if t.dl != nil {
		t.dl.peerGone(p)
	}
	if p.chk.Unchoked {
		t.fill(time.Now())
	}
	t.dialMore()
}

func (t *Torrent) onExtended(p *peer, ev event) {
	switch ev.extID {
	case 0:
		h, err := wire.ParseExtendedHandshake(ev.data)
		if err != nil {
			return // a bad handshake means no extensions, not a bad peer
		}
		if h.Reqq > 0 {
			p.reqq = h.Reqq
		}
		p.utMetadata = byte(h.M[wire.UTMetadata])
		p.client = h.V
		if !p.c.Outgoing && h.P > 0 && !p.dialAddr.IsValid() {
			p.dialAddr = netip.AddrPortFrom(p.addr.Addr(), uint16(h.P))
			if _, taken := t.byAddr[p.dialAddr]; !taken {
				t.byAddr[p.dialAddr] = p
			}
		}
	case ourUTMetadata:
		m, err := wire.ParseMetadata(ev.data)
		if err != nil || m.Type != wire.MetadataRequest || p.utMetadata == 0 {
			return
		}
		p.queueMsg(&wire.Message{ID: wire.Extended, ExtendedID: p.utMetadata, Payload: metadataReply(t.mi.InfoBytes, m.Piece)})
	}
}

// metadataReply is the ut_metadata answer to a request for piece i of info (BEP 9).
func metadataReply(info []byte, i int) []byte {
	start := i * wire.MetadataPieceLen
	if start >= len(info) {
		return wire.AppendMetadata(nil, &wire.MetadataMessage{Type: wire.MetadataReject, Piece: i})
	}
	end := min(start+wire.MetadataPieceLen, len(info))
	return wire.AppendMetadata(nil, &wire.MetadataMessage{Type: wire.MetadataData, Piece: i, TotalSize: len(info), Data: info[start:end]})
}

// tick is the loop's once-a-second work.
func (t *Torrent) tick(now time.Time) {
	freed := false
	for _, p := range t.peers {
		up := p.uploaded.Load()
		p.upRate.sample(now, up)
		if up != p.lastUpBytes {
			p.lastUpBytes, p.lastUp = up, now
		}
		p.downRate.sample(now, p.downloaded.Load())
		if now.UnixNano()-p.lastWrite.Load() > int64(KeepAliveInterval) {
			p.lastWrite.Store(now.UnixNano())
			p.queueRaw([]byte{0, 0, 0, 0})
		}
		freed = t.checkStall(p, now) || freed
	}
	if freed {
		t.fill(now)
	}
	if t.dl != nil {
		t.dl.tick(now)
	}
	if now.Sub(t.lastChoke) >= t.rechokeEvery {
		t.lastChoke = now
		t.rechoke(now)
	}
	t.dialMore()
	t.pollPayload(now)
	t.updateStats(now)
}

// checkStall chokes p when a write to it has made no progress for UploadStallTimeout (it
// does not read our data), counts it, and reports whether that freed an upload slot. The
// peer may be unchoked again once its socket drains; WriteTimeout disconnects it if it
// never does.
func (t *Torrent) checkStall(p *peer, now time.Time) bool {
	w := p.writing.Load()
	stalled := w != 0 && now.UnixNano()-w > int64(t.cfg.UploadStallTimeout)
	if stalled == p.stalled {
		return false
	}
	p.stalled = stalled
	if !stalled {
		return false
	}
	t.cfg.Metrics.uploadStall()
	t.log.Debug("peer does not read our data: choked", "peer", p)
	if !p.chk.Unchoked {
		return false
	}
	p.chk.Unchoked, p.chk.Optimistic = false, false
	p.setChoking(true)
	return true
}

// chokerInput copies the peers' state into t.chk for the choker. A slot holder that has
// taken none of our data for UploadStallTimeout is Idle: it asks for nothing (or does
// not read), and a seed gives its slot to a peer that waits.
func (t *Torrent) chokerInput(now time.Time) {
	t.chk = t.chk[:0]
	for _, p := range t.peers {
		c := p.chk
		c.Interested = p.interested && !p.stalled // a stalled peer gets no slot
		c.Uploaded = p.uploaded.Load() - p.chk.Uploaded
		c.DownloadRate = p.downRate.rate()
		c.Snubbed = t.dl != nil && t.dl.snubbed(p)
		c.Idle = p.chk.Unchoked && now.Sub(p.chk.UnchokedAt) > t.cfg.UploadStallTimeout && now.Sub(p.lastUp) > t.cfg.UploadStallTimeout
		t.chk = append(t.chk, c)
	}
}

// chokerOutput applies the choker's decisions. p.chk.Uploaded keeps the peer's upload
// total at its last unchoke, so the choker sees bytes since then.
func (t *Torrent) chokerOutput(now time.Time) {
	for i, p := range t.peers {
		c := t.chk[i]
		base := p.chk.Uploaded
		if c.Unchoked && !p.chk.Unchoked || c.UnchokedAt.Equal(now) {
			base = p.uploaded.Load()
		}
		p.chk = c
		p.chk.Uploaded = base
		p.setChoking(!c.Unchoked)
	}
}

func (t *Torrent) rechoke(now time.Time) {
	t.chokerInput(now)
	t.choker.Rechoke(now, t.complete(), t.chk)
	t.chokerOutput(now)
}

// fill gives free upload slots to interested peers at once.
func (t *Torrent) fill(now time.Time) {
	t.chokerInput(now)
	if t.choker.Fill(now, t.complete(), t.chk) > 0 {
		t.chokerOutput(now)
	}
}

func (t *Torrent) addCandidates(addrs []netip.AddrPort) {
	for _, a := range addrs {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !a.IsValid() || a.Port() == 0 || len(t.candidates) >= maxCandidates {
			continue
		}
		if _, ok := t.known[a]; ok {
			continue
		}
		if _, ok := t.self[a]; ok {
			continue
		}
		t.known[a] = struct{}{}
		t.candidates = append(t.candidates, a)
	}
}

// dialMore starts outgoing connections while the torrent has fewer than MaxInitiate peers.
func (t *Torrent) dialMore() {
	if t.ctx == nil || t.ctx.Err() != nil {
		return
	}
	for len(t.candidates) > 0 {
		n := len(t.peers) + len(t.dialling)
		if n >= t.cfg.MaxInitiate || n >= t.cfg.MaxConns {
			return
		}
		a := t.candidates[0]
		t.candidates = t.candidates[1:]
		if _, ok := t.byAddr[a]; ok || t.isBanned(a.Addr()) {
			delete(t.known, a)
			continue
		}
		t.dialling[a] = struct{}{}
		t.wg.Add(1)
		go t.dial(a)
	}
}

// dial is a dialler goroutine: it connects to a and hands the result to the loop.
func (t *Torrent) dial(a netip.AddrPort) {
	defer t.wg.Done()
	ctx, cancel := context.WithTimeout(t.ctx, HandshakeTimeout)
	c, err := wire.Dial(ctx, t.cfg.Dialer, a.String(), t.cfg.Wire, t.ih)
	cancel()
	select {
	case t.dialled <- dialResult{a, c, err}:
	case <-t.quit:
		if c != nil {
			c.Close()
		}
	}
}

func (t *Torrent) onDialled(r dialResult) {
	delete(t.dialling, r.addr)
	delete(t.known, r.addr)
	if r.err != nil {
		switch {
		case errors.Is(r.err, wire.ErrSelfConnection):
			t.self[r.addr] = struct{}{}
			t.cfg.Metrics.refuse(RefusedSelf)
		case errors.Is(r.err, wire.ErrUnknownInfoHash):
			t.cfg.Metrics.hostileDisconnect(HostileUnknownInfoHash)
		}
		t.log.Debug("dial failed", "addr", r.addr, "err", r.err)
		t.dialMore()
		return
	}
	t.addConn(r.c, r.addr)
}

func (t *Torrent) updateStats(now time.Time) {
	s := Stats{NumPieces: t.numPieces, Peers: len(t.peers)}
	for _, p := range t.peers {
		if p.has.Full() {
			s.Seeds++
		}
		if p.webrtc {
			s.WebRTCPeers++
		}
	}
	s.UploadRate = t.upRate.sample(now, t.uploaded.Load())
	s.DownloadRate = t.downRate.sample(now, t.downloaded.Load())
	if t.dl != nil {
		s.Have, s.Left, s.HashFails = t.dl.progress()
	} else {
		s.Have = t.have.count()
		if s.Have < t.numPieces {
			for i := range t.numPieces {
				if !t.have.has(uint32(i)) {
					s.Left += t.mi.Layout.PieceSize(i)
				}
			}
		}
		s.Rechecking = t.rechecking()
	}
	t.statsMu.Lock()
	t.stats = s
	t.statsMu.Unlock()
}

// waitUpload takes n bytes from the upload limiters (torrent, then global).
func (t *Torrent) waitUpload(ctx context.Context, n int) error {
	return waitBoth(ctx, t.upLimit, t.cfg.UploadRate, n)
}

// waitDownload takes n bytes from the download limiters.
func (t *Torrent) waitDownload(ctx context.Context, n int) error {
	return waitBoth(ctx, t.downLimit, t.cfg.DownloadRate, n)
}

func waitBoth(ctx context.Context, a, b *rate.Limiter, n int) error {
	if err := waitN(ctx, a, n); err != nil {
		return err
	}
	return waitN(ctx, b, n)
}

// waitN waits for n tokens from l, in chunks of its burst (WaitN refuses more).
func waitN(ctx context.Context, l *rate.Limiter, n int) error {
	if l == nil || l.Limit() == rate.Inf {
		return nil
	}
	for n > 0 {
		k := min(n, max(l.Burst(), 1))
		if err := l.WaitN(ctx, k); err != nil {
			return fmt.Errorf("session: rate limit: %w", err)
		}
		n -= k
	}
	return nil
}
