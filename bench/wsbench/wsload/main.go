// Command wsload is the load generator of scripts/bench-ws.sh: N WebSocket peers connected to
// a WebTorrent tracker on loopback, spread over S swarms and over many source addresses
// (127.0.0.2 onwards, to stay under per-IP connection caps and the ephemeral port range),
// announcing with offers (dummy SDPs of a realistic size) and answering every offer the
// tracker relays to them, as the webtorrent client does.
//
// A run connects the peers (each announces event=started without offers), prints a "ready"
// line with the tracker's RSS per connected peer when -pid is given (right after the last
// connection, and again after -settle with the peers idle: a garbage-collected runtime gives
// memory back late), then runs -rounds rounds:
// -conc announcers in a closed loop, each taking a random idle peer, sending an announce with
// -offers offers and waiting for its reply. Each round prints announces/s, offers relayed/s,
// answers delivered (and how many matched an outstanding offer), p50/p90/p99/max of
// announce→reply and of offer→answer, failures, timeouts, and the CPU time the tracker and
// the load generator used. Output lines start with "WSLOAD " and hold key=value pairs.
//
// -rate R paces the announces instead (at most R a second, still at most -conc in flight): the
// latency at a fixed offered load, rather than at the tracker's saturation, where a closed
// loop's latency is only its queue (Little's law: -conc / rate).
//
// With -control, each round waits for a line on stdin: "go" runs a round at -rate, "go R" at
// rate R (0: closed loop); "quit" or end of input stops the run. scripts/bench-ws.sh runs one
// wsload per tracker and alternates their rounds that way.
//
// Every phase is bounded: the connect phase by -connect-max, each dial, write and wait by
// -timeout, each round by -dur (plus one -timeout for the last replies).
//
// The load generator assumes what bittorrent-tracker and aquatic_ws do: the reply to an
// announce has an "interval", relayed offers and answers carry "offer" / "answer", and an
// answer gets no reply of its own.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var cfg config
	var pid int
	var control bool
	var rounds, rate int
	var settle time.Duration
	var name string
	flag.StringVar(&cfg.URL, "url", "", "WebSocket announce URL, e.g. ws://127.0.0.1:8000/announce")
	flag.IntVar(&cfg.Peers, "peers", 1000, "WebSocket peers kept connected")
	flag.IntVar(&cfg.Swarms, "swarms", 100, "torrents the peers are spread over")
	flag.IntVar(&cfg.Sources, "sources", 250, "source addresses (127.0.0.2 onwards)")
	flag.IntVar(&cfg.Offers, "offers", 5, "offers per announce (the webtorrent client sends up to 5)")
	flag.IntVar(&cfg.SDPBytes, "sdp-bytes", 500, "size of each dummy SDP")
	flag.IntVar(&cfg.Conc, "conc", 64, "announces in flight during a round")
	flag.IntVar(&cfg.ConnectConc, "connect-conc", 64, "connections set up at once")
	flag.DurationVar(&cfg.Dur, "dur", 10*time.Second, "length of a round")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "bound of a dial, a write, a wait for a reply")
	flag.DurationVar(&cfg.ConnectMax, "connect-max", 10*time.Minute, "bound of the connect phase")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of peer IDs and offer IDs")
	flag.Int64Var(&cfg.ReadLimit, "read-limit", 1<<20, "largest message accepted from the tracker")
	flag.IntVar(&rounds, "rounds", 1, "rounds to run")
	flag.IntVar(&rate, "rate", 0, "announces a second (0: closed loop, as fast as the tracker answers)")
	flag.IntVar(&pid, "pid", 0, "tracker PID: report its RSS and CPU time from /proc")
	flag.DurationVar(&settle, "settle", 5*time.Second, "with -pid: idle time before the second RSS reading")
	flag.BoolVar(&control, "control", false, "wait for a line on stdin before each round")
	flag.StringVar(&name, "name", "tracker", "label printed in every line")
	cpuProfile := flag.String("cpuprofile", "", "write the load generator's CPU profile to this file")
	flag.Parse()
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		os.Exit(2)
	}
	if rounds < 0 || rate < 0 || settle < 0 || settle > 10*time.Minute {
		fmt.Fprintln(os.Stderr, "wsload: -rounds and -rate must not be negative, -settle from 0 to 10m")
		os.Exit(2)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsload:", err)
			os.Exit(2)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "wsload:", err)
			os.Exit(2)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	var in io.Reader
	if control {
		in = os.Stdin
	}
	if err := run(cfg, name, pid, rounds, rate, settle, in, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wsload:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// run connects the population, reports it, runs the rounds and disconnects. With in non-nil
// each round waits for a line from it ("go", "go RATE", "quit").
func run(cfg config, name string, pid, rounds, rate int, settle time.Duration, in io.Reader, out io.Writer) error {
	l := newLoad(cfg)
	defer l.close()
	rssStart := procRSS(pid)
	t0 := time.Now()
	failed, err := l.connect()
	connectS := time.Since(t0).Seconds()
	if len(l.live) < 2 {
		return fmt.Errorf("%d of %d peers connected: %w", len(l.live), cfg.Peers, err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wsload: %d peers not connected, first error: %v\n", failed, err)
	}
	rss, rssSettled := procRSS(pid), int64(0)
	if pid > 0 {
		time.Sleep(settle) // bounded by the flag's check
		rssSettled = procRSS(pid)
	}
	perPeer := func(kb int64) float64 {
		if pid <= 0 {
			return 0
		}
		return float64(kb-rssStart) * 1024 / float64(len(l.live))
	}
	fmt.Fprintf(out, "WSLOAD name=%s ready peers=%d connected=%d connect_failed=%d connect_s=%.2f connects_per_s=%.0f swarms=%d sources=%d rss_start_kb=%d rss_kb=%d rss_per_peer_b=%.0f settle_s=%.1f rss_settled_kb=%d rss_settled_per_peer_b=%.0f closed=%d\n",
		name, cfg.Peers, len(l.live), failed, connectS, float64(len(l.live))/connectS, cfg.Swarms, cfg.Sources,
		rssStart, rss, perPeer(rss), settle.Seconds(), rssSettled, perPeer(rssSettled), l.c.closed.Load())

	var lines *bufio.Scanner
	if in != nil {
		lines = bufio.NewScanner(in)
	}
	for r := 1; r <= rounds; r++ {
		rrate := rate
		if lines != nil {
			if !lines.Scan() {
				break
			}
			f := strings.Fields(lines.Text())
			if len(f) == 0 || f[0] != "go" || len(f) > 2 {
				break // "quit", or anything else
			}
			if len(f) == 2 {
				v, err := strconv.Atoi(f[1])
				if err != nil || v < 0 {
					return fmt.Errorf("control line %q: want \"go\" or \"go RATE\"", lines.Text())
				}
				rrate = v
			}
		}
		trk0, self0 := procCPU(pid), selfCPU()
		wall := l.round(cfg.Seed+uint64(r)<<32, rrate)
		l.settle()
		trk, self := procCPU(pid)-trk0, selfCPU()-self0
		c := &l.c
		secs := wall.Seconds()
		fmt.Fprintf(out, "WSLOAD name=%s round=%d rate=%d peers=%d wall_s=%.2f announces=%d announces_per_s=%.0f offers_sent=%d offers_relayed=%d offers_relayed_per_s=%.0f answers_sent=%d answers_delivered=%d answers_matched=%d failures=%d timeouts=%d write_errors=%d closed=%d other=%d missed=%d p50_ms=%s p90_ms=%s p99_ms=%s max_ms=%s answer_p50_ms=%s answer_p99_ms=%s tracker_cpu_s=%.2f load_cpu_s=%.2f rss_kb=%d\n",
			name, r, rrate, len(l.live), secs, c.announces.Load(), float64(c.announces.Load())/secs,
			c.offersSent.Load(), c.offersRelayed.Load(), float64(c.offersRelayed.Load())/secs,
			c.answersSent.Load(), c.answersRecv.Load(), c.answersMatched.Load(),
			c.failures.Load(), c.timeouts.Load(), c.writeErrs.Load(), c.closed.Load(), c.other.Load(), c.missed.Load(),
			ms(l.lat.quantile(0.5)), ms(l.lat.quantile(0.9)), ms(l.lat.quantile(0.99)), ms(time.Duration(l.lat.max.Load())),
			ms(l.ansLat.quantile(0.5)), ms(l.ansLat.quantile(0.99)),
			trk, self, procRSS(pid))
	}
	return nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1000, 'f', 3, 64) }

// procRSS returns VmRSS of pid in KiB (0 without a pid or when /proc has none).
func procRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// procCPU returns the user+system CPU seconds of pid and its threads so far.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
