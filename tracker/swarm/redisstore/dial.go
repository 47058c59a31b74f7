package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dial returns a client for a --store URL (it does not connect: an unreachable store at
// start is not fatal). Accepted forms:
//
//	redis://[user:pass@]host:port[/db]    one Redis (or Valkey)
//	rediss://[user:pass@]host:port[/db]   the same over TLS
//	unix:///path/redis.sock[?db=N]        over a Unix socket
//	redis-cluster://[user:pass@]h1:p1,h2:p2,...   a Redis Cluster, given seed nodes; the
//	                                      client follows MOVED/ASK and topology changes
//
// timeout bounds dialling and the wait for a pooled connection; each call is bounded by its
// context (the store gives an announce timeout), and reads and writes by bulkTimeout(timeout)
// at most, the budget of the store's bulk reads (Walk, RangeTorrents), whose replies are large.
func Dial(rawURL string, timeout time.Duration) (redis.UniversalClient, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if rest, ok := strings.CutPrefix(rawURL, "redis-cluster://"); ok {
		opt, err := parseCluster(rest, timeout)
		if err != nil {
			return nil, err
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", Redact(rawURL), err)
	}
	opt.DialTimeout, opt.PoolTimeout = timeout, timeout
	opt.ReadTimeout, opt.WriteTimeout, opt.ContextTimeoutEnabled = bulkTimeout(timeout), bulkTimeout(timeout), true
	opt.MaxRetries = -1 // a retry would pass the announce's time budget; the client retries
	return redis.NewClient(opt), nil
}

// bulkTimeout is the longest a read or write on a connection may take: that of the store's
// bulk reads (Store.readCtx), ten times an announce's budget.
func bulkTimeout(timeout time.Duration) time.Duration { return 10 * timeout }

// QuietClientLog sends the Redis client library's own log lines (one per failed dial: a
// flood while Redis is down) to logger at debug level. The library's logger is process-wide,
// so a program's main calls this once; failures are counted in
// webswarm_tracker_store_errors_total and /healthz says why.
func QuietClientLog(logger *slog.Logger) { redis.SetLogger(clientLog{logger}) }

type clientLog struct{ l *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	if c.l.Enabled(ctx, slog.LevelDebug) {
		c.l.DebugContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
	}
}

// CheckURL reports whether rawURL is a store URL Dial accepts, without making a client.
func CheckURL(rawURL string) error {
	if rest, ok := strings.CutPrefix(rawURL, "redis-cluster://"); ok {
		_, err := parseCluster(rest, DefaultTimeout)
		return err
	}
	if _, err := redis.ParseURL(rawURL); err != nil {
		return fmt.Errorf("store URL %q: %w", Redact(rawURL), err)
	}
	return nil
}

func parseCluster(rest string, timeout time.Duration) (*redis.ClusterOptions, error) {
	u, err := url.Parse("redis://" + rest)
	if err != nil {
		return nil, fmt.Errorf("store URL %q: %w", Redact("redis-cluster://"+rest), err)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("store URL %q: a cluster has no database number", Redact("redis-cluster://"+rest))
	}
	var addrs []string
	for _, a := range strings.Split(u.Host, ",") {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("store URL %q: seed node %q: %w", Redact("redis-cluster://"+rest), a, err)
		}
		addrs = append(addrs, a)
	}
	opt := &redis.ClusterOptions{
		Addrs:                 addrs,
		DialTimeout:           timeout,
		ReadTimeout:           bulkTimeout(timeout),
		WriteTimeout:          bulkTimeout(timeout),
		ContextTimeoutEnabled: true,
		PoolTimeout:           timeout,
		MaxRedirects:          3,
	}
	if u.User != nil {
		opt.Username = u.User.Username()
		opt.Password, _ = u.User.Password()
	}
	return opt, nil
}

// Redact hides a password in a URL for error messages.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "…@" + s[i+1:]
		}
		return s
	}
	return u.Redacted()
}
