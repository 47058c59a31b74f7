package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/webswarm/webswarm/tracker/dfile"
	"github.com/webswarm/webswarm/tracker/swarm"
	"github.com/webswarm/webswarm/tracker/swarm/redisstore"
)

// openMemoryStore sets up the in-process store and its state file (--dfile), loading it.
func (s *server) openMemoryStore(cfg swarm.Config) error {
	o := s.o
	mem, err := swarm.NewMemory(cfg)
	if err != nil {
		return err
	}
	s.store = mem
	s.closers = append(s.closers, mem.Close)
	s.saver, err = dfile.NewSaver(dfile.SaverConfig{
		Path:       o.dfile,
		Store:      s.store,
		Interval:   time.Duration(o.saveDfileInterval) * time.Second,
		Registerer: s.reg,
		Logger:     s.log,
	})
	if err != nil {
		return fmt.Errorf("--dfile %s: %w", o.dfile, err)
	}
	if st, err := s.saver.Load(); err != nil {
		// A corrupt file has been moved aside; the tracker starts empty rather than not at all.
		s.log.Error("STATE FILE NOT LOADED: starting with an empty state", "dfile", o.dfile, "err", err)
	} else {
		s.log.Info("state loaded", "dfile", o.dfile, "torrents", st.Torrents, "peers", st.Peers)
	}
	return nil
}

// openRedisStore sets up the store shared through Redis (--store URL). An unreachable Redis
// is not fatal: announces fail with a reason until it answers (but an --import_dfile needs
// it). --dfile is not used.
func (s *server) openRedisStore(cfg swarm.Config) error {
	o := s.o
	timeout := time.Duration(o.storeTimeoutMS) * time.Millisecond
	redisstore.QuietClientLog(s.log)
	rdb, err := redisstore.Dial(o.store, timeout)
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	s.closers = append(s.closers, rdb.Close)
	if err := instrumentStore(rdb, s.reg); err != nil {
		return err
	}
	watchClusterFailover(rdb)
	s.rdb = rdb // the WebSocket relay's too
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := redisstore.New(ctx, rdb, cfg, redisstore.Options{Prefix: o.storePrefix, Timeout: timeout, Registerer: s.reg})
	if err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	s.store = st
	s.closers = append(s.closers, st.Close)
	if o.importDfile != "" {
		if err := s.importDfile(rdb, st); err != nil {
			return err
		}
	}
	if strings.HasPrefix(o.store, "redis-cluster://") && (o.maxTorrents > 0 || o.maxTotalPeers > 0 || o.maxPeersPerIP > 0) {
		s.log.Warn("on a Redis Cluster --max_torrents, --max_total_peers and --max_peers_per_ip are not enforced (--max_peers is); bound the cluster's memory with maxmemory")
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		s.log.Error("REDIS STORE NOT REACHABLE: announces fail until it answers", "store", redisstore.Redact(o.store), "err", err)
	} else {
		s.log.Info("redis store", "store", redisstore.Redact(o.store), "prefix", o.storePrefix)
	}
	return nil
}
