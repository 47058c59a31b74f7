// Command ceiling is the trivial backend scripts/bench-web.sh puts behind Apache and nginx to
// measure the front end's own ceiling: every request, over HTTP or FastCGI, gets the same
// bencoded body (60 bytes, or -body N), with no work behind it.
//
//	ceiling -http 127.0.0.1:28201 -fcgi unix:/tmp/ceiling.sock -body 350   (or -fcgi 127.0.0.1:28202)
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strconv"
	"strings"
)

// The reply is bencoded like an announce reply: this head, a "peers" string, "e".
const head = "d8:completei1e10:incompletei2e8:intervali60e5:peers"

// body returns a reply of exactly n bytes (at least 60): with -body set to the size of the
// tracker's real replies, the front end moves the same bytes for both backends, and the
// difference left is the tracker's own work.
func body(n int) []byte {
	for k := 6; ; k++ {
		b := head + strconv.Itoa(k) + ":" + strings.Repeat("A", k) + "e"
		if len(b) >= n {
			return []byte(b)
		}
	}
}

func main() {
	httpAddr := flag.String("http", "", "HTTP listen address")
	fcgiAddr := flag.String("fcgi", "", "FastCGI listen address: unix:PATH or HOST:PORT")
	size := flag.Int("body", 60, "reply size in bytes (at least 60)")
	flag.Parse()
	if *httpAddr == "" && *fcgiAddr == "" {
		log.Fatal("give -http and/or -fcgi")
	}
	b := body(*size)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(b)
	})
	errc := make(chan error, 2)
	if *fcgiAddr != "" {
		network, addr := "tcp", *fcgiAddr
		if p, ok := strings.CutPrefix(addr, "unix:"); ok {
			network, addr = "unix", p
			os.Remove(p)
		}
		l, err := net.Listen(network, addr)
		if err != nil {
			log.Fatal(err)
		}
		if network == "unix" {
			// net.Listen makes the socket 0755: the front end's workers could not connect.
			if err := os.Chmod(addr, 0o666); err != nil {
				log.Fatal(err)
			}
		}
		go func() { errc <- fcgi.Serve(l, h) }()
	}
	if *httpAddr != "" {
		go func() { errc <- http.ListenAndServe(*httpAddr, h) }()
	}
	log.Fatal(<-errc)
}
