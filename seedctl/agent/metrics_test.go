package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/tracker/announce"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// refused is a real "connection refused" from a loopback port nobody listens on.
func refused(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Skip("something answered on a port just closed")
	}
	return err
}

func TestClassifyAnnounce(t *testing.T) {
	fail := func(reason string) error { return fmt.Errorf("announce: %w", &announcer.FailureError{Reason: reason}) }
	tests := []struct {
		name           string
		err            error
		outcome, class string
	}{
		{"ok", nil, OutcomeOK, ClassNone},
		{"our tracker's unknown torrent", fail(announce.NotAuthorized), OutcomeFailure, ClassUnregistered},
		{"bttrack wording, other case", fail("REQUESTED DOWNLOAD IS NOT AUTHORIZED FOR USE WITH THIS TRACKER."), OutcomeFailure, ClassUnregistered},
		{"unregistered torrent", fail("Unregistered torrent"), OutcomeFailure, ClassUnregistered},
		{"torrent not found", fail("torrent not found"), OutcomeFailure, ClassUnregistered},
		{"passkey", fail("Invalid passkey"), OutcomeFailure, ClassNotAuthorized},
		{"plain not authorized", fail("not authorized"), OutcomeFailure, ClassNotAuthorized},
		{"banned client", fail("Your client is banned"), OutcomeFailure, ClassNotAuthorized},
		{"rate limited", fail("You are announcing too often, slow down"), OutcomeFailure, ClassRateLimited},
		{"other reason", fail("tracker is on holiday"), OutcomeFailure, ClassRefused},
		{"empty reason", fail(""), OutcomeFailure, ClassRefused},
		{"http status", fmt.Errorf("announce: %w", &announcer.StatusError{Code: 502}), OutcomeError, ClassHTTPStatus},
		{"bad reply", fmt.Errorf("announce: %w: not a dict", announcer.ErrBadReply), OutcomeError, ClassBadReply},
		{"reply too large", announcer.ErrReplyTooLarge, OutcomeError, ClassBadReply},
		{"udp silence", fmt.Errorf("udp: %w", announcer.ErrNoReply), OutcomeError, ClassUnreachable},
		{"dns", &url.Error{Op: "Get", URL: "http://x.invalid/announce", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, OutcomeError, ClassUnreachable},
		{"deadline", fmt.Errorf("announce: %w", context.DeadlineExceeded), OutcomeError, ClassTimeout},
		{"net timeout", &url.Error{Op: "Get", URL: "http://127.0.0.1:1/announce", Err: timeoutErr{}}, OutcomeError, ClassTimeout},
		{"connection refused", refused(t), OutcomeError, ClassUnreachable},
		{"refused through url.Error", &url.Error{Op: "Get", URL: "http://127.0.0.1:1/announce", Err: refused(t)}, OutcomeError, ClassUnreachable},
		{"anything else", errors.New("something odd"), OutcomeError, ClassOther},
		{"canceled", context.Canceled, OutcomeError, ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := announcer.Status{Err: tt.err}
			var fe *announcer.FailureError
			if errors.As(tt.err, &fe) {
				st.Failure = fe.Reason
			}
			outcome, class := ClassifyAnnounce(st)
			if outcome != tt.outcome || class != tt.class {
				t.Errorf("ClassifyAnnounce(%v) = %s/%s, want %s/%s", tt.err, outcome, class, tt.outcome, tt.class)
			}
			if !slices.Contains(announceClasses[outcome], class) {
				t.Errorf("%s/%s is not a pre-declared label pair: its series would appear from nowhere", outcome, class)
			}
		})
	}
}

// gather returns the registry's families by name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// Per-torrent series stop at MetricsMaxTorrents (the first torrents by name, the same set
// at every scrape); the totals count every torrent; a negative bound leaves totals only.
func TestMetricsSeriesBound(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"c.iso", "a.iso", "d.iso", "b.iso"} {
		publish(t, dir, n, "")
	}
	for _, tc := range []struct {
		max   int
		names []string
	}{
		{2, []string{"a.iso", "b.iso"}},
		{10, []string{"a.iso", "b.iso", "c.iso", "d.iso"}},
		{-1, nil},
	} {
		t.Run(fmt.Sprint(tc.max), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			cfg := testConfig(t, dir)
			cfg.Registry = reg
			cfg.MetricsMaxTorrents = tc.max
			r := start(t, cfg)
			waitUntil(t, "all seeding", func() bool { return r.seedingCount() == 4 })
			for range 2 { // the same set at every scrape
				mfs := gather(t, reg)
				var names []string
				for _, m := range mfs["webswarm_seed_torrent_info"].GetMetric() {
					names = append(names, label(m, "name"))
					if label(m, "state") != string(Seeding) || len(label(m, "info_hash")) != 40 {
						t.Errorf("info series %v", m.GetLabel())
					}
				}
				slices.Sort(names)
				if !slices.Equal(names, tc.names) {
					t.Errorf("info series for %v, want %v", names, tc.names)
				}
				for _, fam := range []string{"webswarm_seed_torrent_uploaded_bytes_total", "webswarm_seed_torrent_peers", "webswarm_seed_torrent_ratio"} {
					if n := len(mfs[fam].GetMetric()); n != len(tc.names) {
						t.Errorf("%s: %d series, want %d", fam, n, len(tc.names))
					}
				}
				if got := mfs["webswarm_seed_torrents_without_series"].GetMetric()[0].GetGauge().GetValue(); got != float64(4-len(tc.names)) {
					t.Errorf("torrents without series %v, want %d", got, 4-len(tc.names))
				}
				for _, m := range mfs["webswarm_seed_torrents"].GetMetric() {
					want := 0.0
					if label(m, "state") == string(Seeding) {
						want = 4
					}
					if m.GetGauge().GetValue() != want {
						t.Errorf("torrents{state=%s} = %v, want %v", label(m, "state"), m.GetGauge().GetValue(), want)
					}
				}
			}
			r.stop(t)
		})
	}
}

// Failed saves of resume records and of the agent's state are counted apart
// (webswarm_seed_state_save_failures_total{file}) so that an alert sees them.
func TestStateSaveFailuresCounted(t *testing.T) {
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, dir)
	cfg.StateDir = filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(cfg.StateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg.Registry = reg
	r := start(t, cfg)
	failures := func() map[string]float64 {
		out := map[string]float64{}
		for _, m := range gather(t, reg)["webswarm_seed_state_save_failures_total"].GetMetric() {
			out[label(m, "file")] = m.GetCounter().GetValue()
		}
		return out
	}
	if f := failures(); len(f) != 2 || f["agent"] != 0 || f["resume"] != 0 {
		t.Fatalf("before any failure: %v, want agent and resume at 0", f)
	}
	// The state directory vanishes (a wiped disk): the check of a new torrent hashes it and
	// cannot save its record; the state saved at shutdown fails too.
	if err := os.RemoveAll(cfg.StateDir); err != nil {
		t.Fatal(err)
	}
	h := publish(t, dir, "new.iso", "")
	r.Rescan()
	r.waitState(t, h, Seeding)
	waitUntil(t, "resume save failure counted", func() bool { return failures()["resume"] >= 1 })
	r.stop(t)
	if f := failures(); f["agent"] != 1 {
		t.Errorf("after shutdown: %v, want agent 1", f)
	}
}
