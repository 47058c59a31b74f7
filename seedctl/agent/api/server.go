package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/webswarm/webswarm/seedctl/agent"
)

// Config says where the control API listens.
type Config struct {
	// Socket is the unix socket path; empty means agent.SocketPath(StateDir). Ignored when TCP is set.
	Socket string
	// StateDir is the agent's state directory, used for the default socket.
	StateDir string
	// TCP, when set, is a loopback address ("127.0.0.1:PORT") to listen on instead of the socket.
	TCP string
	// TokenFile holds the bearer token; required with TCP.
	TokenFile string
	// Logger receives server-side failures; nil discards them.
	Logger *slog.Logger
}

// Server serves the control API on one listener until Shutdown.
type Server struct {
	srv  *http.Server
	l    net.Listener
	done chan struct{}
	err  error
}

// Start listens as cfg says and serves c there in a goroutine the Server owns.
func Start(c agent.Controller, cfg Config) (*Server, error) {
	h := NewHandler(c, cfg.Logger)
	var l net.Listener
	var err error
	if cfg.TCP != "" {
		if cfg.TokenFile == "" {
			return nil, fmt.Errorf("a TCP control address needs a token file: %w", agent.ErrInvalid)
		}
		tok, err := ReadTokenFile(cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		if l, err = ListenTCP(cfg.TCP); err != nil {
			return nil, err
		}
		h = Guard(h, tok, AllowedHosts(l.Addr()))
	} else {
		sock := cfg.Socket
		if sock == "" {
			if cfg.StateDir == "" {
				return nil, fmt.Errorf("control socket: no path and no state directory: %w", agent.ErrInvalid)
			}
			sock = agent.SocketPath(cfg.StateDir)
		}
		if l, err = ListenUnix(sock); err != nil {
			return nil, err
		}
	}
	return Serve(l, h, cfg.Logger), nil
}

// Serve serves h on l in a goroutine the Server owns, with timeouts that keep a stuck or slow
// client from holding a connection for long. Shutdown stops it and closes l.
func Serve(l net.Listener, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      2 * time.Minute, // an add of a large torrent parses it first
			IdleTimeout:       time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		l:    l,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("control API: %w", err)
		}
	}()
	return s
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Done is closed when the server has stopped serving.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err is why the server stopped on its own; nil after Shutdown. Valid once Done is closed.
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// Shutdown stops accepting, closes the listener (removing a unix socket), waits for requests in
// flight until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	return err
}
