// Command ceiling is the trivial backend scripts/bench-web.sh puts behind Apache and nginx to
// measure the front end's own ceiling: every request, over HTTP or FastCGI, gets the same
// 60-byte bencoded body, with no work behind it.
//
//	ceiling -http 127.0.0.1:28201 -fcgi unix:/tmp/ceiling.sock   (or -fcgi 127.0.0.1:28202)
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/fcgi"
	"os"
	"strings"
)

// 60 bytes, bencoded like a tiny announce reply.
const body60 = "d8:completei1e10:incompletei2e8:intervali60e5:peers6:AAAAAAe"

func main() {
	httpAddr := flag.String("http", "", "HTTP listen address")
	fcgiAddr := flag.String("fcgi", "", "FastCGI listen address: unix:PATH or HOST:PORT")
	flag.Parse()
	if *httpAddr == "" && *fcgiAddr == "" {
		log.Fatal("give -http and/or -fcgi")
	}
	b := []byte(body60)
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
