package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/webswarm/webswarm/tracker/dfile"
	"github.com/webswarm/webswarm/tracker/swarm"
)

// importDfile loads the state file named by --import_dfile into the shared store, once.
//
// Once is kept twice over. After a complete import, a marker key named for the SHA-256 of
// the file's content is set in the store, and a tracker started again with the same file
// (or a second instance started with it) skips it: the peers that have stopped since are
// not brought back. And the store's Restore is itself idempotent (a peer it has is kept, the
// completion count is raised to the file's, never added to), so an import cut short — a
// crash, Redis gone half-way — is simply run again.
func (s *server) importDfile(rdb redis.UniversalClient, store swarm.Store) error {
	path := s.o.importDfile
	sum, err := fileSHA256(path)
	if err != nil {
		return fmt.Errorf("--import_dfile: %w", err)
	}
	marker := s.o.storePrefix + "imported:" + sum
	timeout := 10 * time.Duration(s.o.storeTimeoutMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	at, err := rdb.Get(ctx, marker).Result()
	switch {
	case err == nil:
		s.log.Info("state file already imported: skipped", "import_dfile", path, "sha256", sum, "imported", at)
		return nil
	case err != redis.Nil:
		return fmt.Errorf("--import_dfile %s: the store did not answer: %w", path, err)
	}
	start := time.Now()
	stats, err := dfile.Import(path, store)
	if err != nil {
		return fmt.Errorf("--import_dfile: %w", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := rdb.Set(ctx, marker, time.Now().UTC().Format(time.RFC3339), 0).Err(); err != nil {
		return fmt.Errorf("--import_dfile %s: imported, but the marker that keeps it from being imported again was not written: %w", path, err)
	}
	s.log.Info("state file imported", "import_dfile", path, "sha256", sum, "torrents", stats.Torrents,
		"peers", stats.Peers, "skipped", stats.Skipped, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// fileSHA256 returns the hex SHA-256 of the file at path.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
