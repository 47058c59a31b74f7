package rtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/webswarm/webswarm/internal/bittorrent"
)

const (
	// TorrentsPerSocket bounds the torrents one tracker WebSocket carries, our tracker's
	// default --ws_max_swarms; the torrents of one URL past it share another socket.
	TorrentsPerSocket = 100
	// inboxSize bounds the tracker messages waiting for one torrent's Client; a tracker
	// sending faster than they are served has the rest dropped (and counted).
	inboxSize = 32
)

// errNotConnected is returned by a send while the socket is between connections.
var errNotConnected = errors.New("rtc: tracker not connected")

// socket is one WebSocket to a tracker URL, shared by the Clients of up to
// TorrentsPerSocket torrents: every message of the WebTorrent protocol names its info_hash,
// so one connection serves them all, as webtorrent and bittorrent-tracker share one. It
// reconnects with backoff, and ends when its last Client leaves or the Transport closes.
type socket struct {
	t      *Transport
	url    string
	dialer *websocket.Dialer
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	clients map[bittorrent.InfoHash]*Client
	ws      *websocket.Conn // nil while not connected

	wmu sync.Mutex // one writer at a time
}

// join puts c on a socket to its URL with room for it, opening one when none has.
func (t *Transport) join(c *Client) (*socket, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	ih := c.cfg.InfoHash
	for _, s := range t.sockets[c.cfg.URL] {
		if s.add(c) {
			return s, nil
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &socket{t: t, url: c.cfg.URL, dialer: c.cfg.Dialer, log: c.cfg.Log, ctx: ctx, cancel: cancel,
		clients: map[bittorrent.InfoHash]*Client{ih: c}}
	t.sockets[s.url] = append(t.sockets[s.url], s)
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		s.run()
	}()
	return s, nil
}

// add puts c on s when s has room and no Client of c's torrent (the tracker knows one
// peer per socket and torrent); a connected socket tells c at once.
func (s *socket) add(c *Client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.clients[c.cfg.InfoHash]; taken || len(s.clients) >= TorrentsPerSocket {
		return false
	}
	s.clients[c.cfg.InfoHash] = c
	if s.ws != nil {
		c.connected()
	}
	return true
}

// leave takes c off s, and stops s when c was its last Client.
func (t *Transport) leave(s *socket, c *Client) {
	t.mu.Lock()
	s.mu.Lock()
	if s.clients[c.cfg.InfoHash] == c {
		delete(s.clients, c.cfg.InfoHash)
	}
	empty := len(s.clients) == 0
	s.mu.Unlock()
	if empty {
		ss := t.sockets[s.url]
		for i, x := range ss {
			if x == s {
				ss = append(ss[:i], ss[i+1:]...)
				break
			}
		}
		if len(ss) == 0 {
			delete(t.sockets, s.url)
		} else {
			t.sockets[s.url] = ss
		}
	}
	t.mu.Unlock()
	if empty {
		s.cancel()
	}
}

// run connects, serves the connection, and reconnects with backoff until s.ctx ends.
func (s *socket) run() {
	backoff := minBackoff
	for {
		connected, err := s.serve()
		if s.ctx.Err() != nil {
			return
		}
		if connected {
			backoff = minBackoff
		}
		s.log.Warn("webrtc tracker", "url", s.url, "err", err, "retry", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// serve dials the tracker and hands what it sends to the Clients, until the connection
// fails or s.ctx ends; connected reports whether it got that far.
func (s *socket) serve() (connected bool, err error) {
	dctx, cancel := context.WithTimeout(s.ctx, 30*time.Second)
	ws, _, err := s.dialer.DialContext(dctx, s.url, nil)
	cancel()
	if err != nil {
		return false, fmt.Errorf("rtc: dial tracker: %w", err)
	}
	ws.SetReadLimit(maxTrackerMessage)
	stop := context.AfterFunc(s.ctx, func() { ws.Close() })
	defer stop()
	s.mu.Lock()
	s.ws = ws
	for _, c := range s.clients {
		c.connected()
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.ws = nil
		s.mu.Unlock()
		ws.Close()
	}()
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return true, fmt.Errorf("rtc: read tracker: %w", err)
		}
		var m trackerMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return true, fmt.Errorf("rtc: read tracker: %w", err)
		}
		s.dispatch(m)
	}
}

// dispatch hands m to the Client of its torrent; it is dropped when that Client has
// inboxSize messages waiting already, or there is none.
func (s *socket) dispatch(m trackerMessage) {
	ih, ok := parseBin(m.InfoHash)
	s.mu.Lock()
	c := s.clients[ih]
	s.mu.Unlock()
	if !ok || c == nil {
		s.log.Debug("webrtc tracker message for no torrent of ours", "url", s.url, "action", m.Action)
		return
	}
	select {
	case c.inbox <- m:
	default:
		s.t.cfg.Metrics.refuse("flood")
	}
}

// send writes v to the tracker; a write that fails closes the connection, which then
// reconnects.
func (s *socket) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("rtc: encode tracker message: %w", err)
	}
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws == nil {
		return errNotConnected
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		ws.Close()
		return fmt.Errorf("rtc: write tracker: %w", err)
	}
	return nil
}

// isConnected reports whether s has a tracker connection now.
func (s *socket) isConnected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ws != nil
}
