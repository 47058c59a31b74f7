package agent

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"net"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/webswarm/webswarm/seedctl/announcer"
	"github.com/webswarm/webswarm/seedctl/metafile"
	"github.com/webswarm/webswarm/seedctl/session"
	"github.com/webswarm/webswarm/seedctl/storage"
)

// Announce outcomes and error classes (webswarm_seed_announces_total{outcome,class}): a
// small fixed set, so that "the tracker does not know this torrent" and "the tracker cannot
// be reached" stand out without putting tracker text in a label.
const (
	OutcomeOK      = "ok"      // the tracker answered
	OutcomeFailure = "failure" // the tracker answered with a failure reason
	OutcomeError   = "error"   // no usable answer

	ClassNone          = "none"
	ClassUnregistered  = "unregistered"   // failure: torrent not registered / unknown
	ClassNotAuthorized = "not_authorized" // failure: passkey, private tracker, banned client
	ClassRateLimited   = "rate_limited"   // failure: announcing too often
	ClassRefused       = "refused"        // any other failure reason
	ClassUnreachable   = "unreachable"    // connection refused, no route, DNS, UDP silence
	ClassTimeout       = "timeout"        // the tracker did not answer in time
	ClassHTTPStatus    = "http_status"    // an HTTP status other than 200
	ClassBadReply      = "bad_reply"      // a reply that does not parse
	ClassOther         = "other"
)

// ClassifyAnnounce returns the outcome and class of the last announce in st.
func ClassifyAnnounce(st announcer.Status) (outcome, class string) {
	if st.Err == nil {
		return OutcomeOK, ClassNone
	}
	var fe *announcer.FailureError
	if errors.As(st.Err, &fe) {
		return OutcomeFailure, classifyReason(fe.Reason)
	}
	var se *announcer.StatusError
	var ne net.Error
	var dnsErr *net.DNSError
	var opErr *net.OpError
	switch {
	case errors.As(st.Err, &se):
		return OutcomeError, ClassHTTPStatus
	case errors.Is(st.Err, announcer.ErrBadReply):
		return OutcomeError, ClassBadReply
	case errors.Is(st.Err, announcer.ErrNoReply), errors.As(st.Err, &dnsErr):
		return OutcomeError, ClassUnreachable
	case errors.Is(st.Err, context.DeadlineExceeded), errors.As(st.Err, &ne) && ne.Timeout():
		return OutcomeError, ClassTimeout
	case errors.As(st.Err, &opErr):
		return OutcomeError, ClassUnreachable
	}
	return OutcomeError, ClassOther
}

// classifyReason sorts a tracker's failure reason into a class. Tracker text is the only
// source of this distinction: the protocol has no failure codes. bttrack (and our tracker,
// which keeps its wording) refuses a torrent missing from its allowed directory with
// "Requested download is not authorized for use with this tracker.": that is a torrent the
// tracker does not know, so it counts as unregistered, not as a passkey/ban refusal.
func classifyReason(reason string) string {
	r := strings.ToLower(reason)
	has := func(words ...string) bool {
		return slices.ContainsFunc(words, func(w string) bool { return strings.Contains(r, w) })
	}
	switch {
	case has("unregistered", "not registered", "unknown torrent", "torrent not found", "not found", "unknown info", "not authorized for this torrent", "not authorized for use with this tracker", "not tracked"):
		return ClassUnregistered
	case has("passkey", "not authorized", "unauthorized", "access denied", "forbidden", "banned", "not allowed", "private"):
		return ClassNotAuthorized
	case has("too many", "too often", "slow down", "rate limit", "min interval", "try again later"):
		return ClassRateLimited
	}
	return ClassRefused
}

var announceClasses = map[string][]string{
	OutcomeOK:      {ClassNone},
	OutcomeFailure: {ClassUnregistered, ClassNotAuthorized, ClassRateLimited, ClassRefused},
	OutcomeError:   {ClassUnreachable, ClassTimeout, ClassHTTPStatus, ClassBadReply, ClassOther},
}

// Reasons a .torrent was refused (webswarm_seed_torrent_files_refused_total{reason}).
const (
	RefusedNotRegular = "not_regular" // a FIFO, device or directory (or a link to one)
	RefusedLimit      = "limit"       // over --max-torrent-size, -files or -pieces
	RefusedUnsafe     = "unsafe"      // a file path that leaves the data directory, or two files at one path
	RefusedMalformed  = "malformed"   // not a valid torrent (or one still being written)
	RefusedUnreadable = "unreadable"  // could not be read (permissions, I/O)
)

// refusedReason sorts a .torrent read's error into a refusal reason.
func refusedReason(err error) string {
	switch {
	case errors.Is(err, storage.ErrNotRegular):
		return RefusedNotRegular
	case errors.Is(err, metafile.ErrLimit):
		return RefusedLimit
	case errors.Is(err, metafile.ErrUnsafe):
		return RefusedUnsafe
	case errors.Is(err, metafile.ErrMalformed):
		return RefusedMalformed
	}
	return RefusedUnreadable
}

var allStates = []State{Checking, Queued, Seeding, Downloading, Paused, Error}

// metrics are the agent's Prometheus metrics: counters kept as events happen, and a
// collector that reads the torrents at scrape time (as node_exporter's collectors do).
type metrics struct {
	session           *session.Metrics
	announces         *prometheus.CounterVec
	checks            *prometheus.CounterVec
	stateSaveFailures *prometheus.CounterVec // {file="agent"|"resume"}
	// torrentFilesRefused counts .torrent reads refused, by reason; torrentFilesSkipped the
	// looks at a refused file that had not changed, so was not read again.
	torrentFilesRefused *prometheus.CounterVec
	torrentFilesSkipped prometheus.Counter
}

func newMetrics(a *Agent, reg prometheus.Registerer) *metrics {
	m := &metrics{
		session: session.NewMetrics(reg),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_announces_total",
			Help: "Tracker announces by outcome (ok, failure, error) and error class.",
		}, []string{"outcome", "class"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_checks_total",
			Help: "Payload checks by result: trusted (clean resume record, nothing hashed) or hashed.",
		}, []string{"result"}),
		stateSaveFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "webswarm_seed_state_save_failures_total",
			Help: "Failed saves of state: file=\"agent\" the agent's own state file, file=\"resume\" a torrent's resume record.",
		}, []string{"file"}),
	}
	m.torrentFilesRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webswarm_seed_torrent_files_refused_total",
		Help: "Reads of .torrent files (in the directory, or added through the control API) refused, by reason: not_regular, limit, unsafe, malformed, unreadable.",
	}, []string{"reason"})
	for _, r := range []string{RefusedNotRegular, RefusedLimit, RefusedUnsafe, RefusedMalformed, RefusedUnreadable} {
		m.torrentFilesRefused.WithLabelValues(r)
	}
	m.torrentFilesSkipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "webswarm_seed_torrent_files_skipped_total",
		Help: "Looks at a refused .torrent file that had not changed since (same size and time): not read again.",
	})
	badFiles := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "webswarm_seed_torrent_files_bad",
		Help: ".torrent files in the directory refused at their last read, waiting for a change.",
	}, a.badFiles)
	m.stateSaveFailures.WithLabelValues("agent")
	m.stateSaveFailures.WithLabelValues("resume")
	for outcome, classes := range announceClasses {
		for _, c := range classes {
			m.announces.WithLabelValues(outcome, c)
		}
	}
	m.checks.WithLabelValues("trusted")
	m.checks.WithLabelValues("hashed")
	if reg != nil {
		reg.MustRegister(m.announces, m.checks, m.stateSaveFailures, m.torrentFilesRefused, m.torrentFilesSkipped, badFiles, newCollector(a))
	}
	return m
}

// refused counts a refused .torrent read and returns its reason.
func (m *metrics) refused(err error) string {
	r := refusedReason(err)
	m.torrentFilesRefused.WithLabelValues(r).Inc()
	return r
}

func (m *metrics) announce(st announcer.Status) {
	m.announces.WithLabelValues(ClassifyAnnounce(st)).Inc()
}

// collector snapshots the torrents at scrape time.
type collector struct {
	a                                         *Agent
	torrents, trackerProblems, info, up, down *prometheus.Desc
	peers, seeders, leechers, ratio, omitted  *prometheus.Desc
	completed                                 *prometheus.Desc
}

func newCollector(a *Agent) *collector {
	ih := []string{"info_hash"}
	return &collector{
		a:               a,
		torrents:        prometheus.NewDesc("webswarm_seed_torrents", "Torrents by state.", []string{"state"}, nil),
		trackerProblems: prometheus.NewDesc("webswarm_seed_torrents_tracker_problem", "Seeding torrents whose last announce failed, by error class.", []string{"class"}, nil),
		info:            prometheus.NewDesc("webswarm_seed_torrent_info", "One series per torrent (bounded by --metrics_max_torrents), value 1.", []string{"info_hash", "name", "state"}, nil),
		up:              prometheus.NewDesc("webswarm_seed_torrent_uploaded_bytes_total", "Payload bytes uploaded, all runs (resume record).", ih, nil),
		down:            prometheus.NewDesc("webswarm_seed_torrent_downloaded_bytes_total", "Payload bytes downloaded, all runs.", ih, nil),
		peers:           prometheus.NewDesc("webswarm_seed_torrent_peers", "Peer connections of the torrent.", ih, nil),
		seeders:         prometheus.NewDesc("webswarm_seed_torrent_tracker_seeders", "Seeders the tracker reported in its last answer.", ih, nil),
		leechers:        prometheus.NewDesc("webswarm_seed_torrent_tracker_leechers", "Leechers the tracker reported in its last answer.", ih, nil),
		completed:       prometheus.NewDesc("webswarm_seed_torrent_tracker_completed", "Finished downloads the tracker reported in its last answer (trackers that send the count).", ih, nil),
		ratio:           prometheus.NewDesc("webswarm_seed_torrent_ratio", "Uploaded bytes over the torrent's size.", ih, nil),
		omitted:         prometheus.NewDesc("webswarm_seed_torrents_without_series", "Torrents beyond --metrics_max_torrents, counted in the totals only.", nil, nil),
	}
}

// Describe sends the descriptors.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.torrents, c.trackerProblems, c.info, c.up, c.down, c.peers, c.seeders, c.leechers, c.completed, c.ratio, c.omitted} {
		ch <- d
	}
}

// Collect emits totals and the first MetricsMaxTorrents torrents' series (by name, then
// info-hash, so the set is stable between scrapes). Only those torrents are snapshotted in
// full: at 10,000 torrents a scrape that built every torrent's row cost more than the
// agent's whole start-up work per second.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	byState, sel, total := c.a.seriesTorrents(c.a.cfg.MetricsMaxTorrents)
	for _, s := range allStates {
		ch <- prometheus.MustNewConstMetric(c.torrents, prometheus.GaugeValue, float64(byState[s]), string(s))
	}
	problems := make(map[string]int)
	for _, st := range c.a.trackerStatuses() {
		if _, class := ClassifyAnnounce(st); class != ClassNone {
			problems[class]++
		}
	}
	for _, classes := range announceClasses {
		for _, cl := range classes {
			if cl != ClassNone {
				ch <- prometheus.MustNewConstMetric(c.trackerProblems, prometheus.GaugeValue, float64(problems[cl]), cl)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.omitted, prometheus.GaugeValue, float64(total-len(sel)))
	for _, t := range sel {
		ti := c.a.info(t)
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, ti.InfoHash, ti.Name, string(ti.State))
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.CounterValue, float64(ti.Uploaded), ti.InfoHash)
		ch <- prometheus.MustNewConstMetric(c.down, prometheus.CounterValue, float64(ti.Downloaded), ti.InfoHash)
		ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(ti.Peers), ti.InfoHash)
		ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, ti.Ratio, ti.InfoHash)
		if ti.Seeders >= 0 {
			ch <- prometheus.MustNewConstMetric(c.seeders, prometheus.GaugeValue, float64(ti.Seeders), ti.InfoHash)
			ch <- prometheus.MustNewConstMetric(c.leechers, prometheus.GaugeValue, float64(ti.Leechers), ti.InfoHash)
		}
		if ti.Completed >= 0 {
			ch <- prometheus.MustNewConstMetric(c.completed, prometheus.GaugeValue, float64(ti.Completed), ti.InfoHash)
		}
	}
}

// seriesTorrents counts the torrents by state and picks the first limit (by name, then
// info-hash) for per-torrent series; limit <= 0 picks none.
func (a *Agent) seriesTorrents(limit int) (byState map[State]int, sel []*torrent, total int) {
	byState = make(map[State]int, len(allStates))
	a.mu.Lock()
	all := make([]*torrent, 0, len(a.byHash))
	for _, t := range a.byHash {
		byState[t.state]++
		all = append(all, t)
	}
	a.mu.Unlock()
	if limit <= 0 {
		return byState, nil, len(all)
	}
	// name and ih never change after the torrent is made: no lock needed to sort.
	slices.SortFunc(all, func(x, y *torrent) int {
		return cmp.Or(cmp.Compare(x.name, y.name), bytes.Compare(x.ih[:], y.ih[:]))
	})
	return byState, all[:min(limit, len(all))], len(all)
}

// trackerStatuses returns the last announce status of every scheduled torrent that has
// announced at least once.
func (a *Agent) trackerStatuses() []announcer.Status {
	a.sched.mu.Lock()
	anns := make([]*announcer.Announcer, 0, len(a.sched.h))
	for _, t := range a.sched.h {
		anns = append(anns, t.ann)
	}
	a.sched.mu.Unlock()
	out := make([]announcer.Status, 0, len(anns))
	for _, ann := range anns {
		if ann == nil {
			continue
		}
		if st := ann.Status(); !st.LastAnnounce.IsZero() {
			out = append(out, st)
		}
	}
	return out
}
