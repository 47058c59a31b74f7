package httpapi

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func fcgiRec(typ byte, id uint16, n int) []byte {
	return append([]byte{1, typ, byte(id >> 8), byte(id), byte(n >> 8), byte(n), 3, 0}, make([]byte, n+3)...)
}

// TestFastCGIScan feeds record streams to the limiter's scanner in every split, byte by byte
// and whole, and checks the limit each trips.
func TestFastCGIScan(t *testing.T) {
	cat := func(bs ...[]byte) []byte {
		var b []byte
		for _, x := range bs {
			b = append(b, x...)
		}
		return b
	}
	many := func(k int, rec func(i int) []byte) []byte {
		var b []byte
		for i := range k {
			b = append(b, rec(i)...)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		stream []byte
		want   string
	}{
		{"one request", cat(fcgiRec(1, 1, 8), fcgiRec(4, 1, 1000), fcgiRec(4, 1, 0), fcgiRec(5, 1, 0)), ""},
		{"many requests in turn, each under the limit", many(40, func(i int) []byte {
			return cat(fcgiRec(1, 1, 8), fcgiRec(4, 1, 30000), fcgiRec(4, 1, 0), fcgiRec(5, 1, 100))
		}), ""},
		{"PARAMS over the limit", cat(fcgiRec(1, 1, 8), fcgiRec(4, 1, 40000), fcgiRec(4, 1, 40000)), fcgiReasonParams},
		{"PARAMS spread over requests", cat(fcgiRec(1, 1, 8), fcgiRec(1, 2, 8), fcgiRec(4, 1, 40000), fcgiRec(4, 2, 40000)), fcgiReasonParams},
		{"PARAMS of a request not begun are not held", many(10, func(int) []byte { return fcgiRec(4, 9, 40000) }), ""},
		{"too many requests begun", many(17, func(i int) []byte { return fcgiRec(1, uint16(i+1), 8) }), fcgiReasonRequests},
		{"not FastCGI", []byte("GET / HTTP/1.1\r\n\r\n"), fcgiReasonBad},
	} {
		for _, step := range []int{1, 7, len(tc.stream)} {
			l, err := LimitFastCGI(nil, FastCGILimits{Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			c := &fcgiConn{l: l.(*fcgiListener), pending: make(map[uint16]int)}
			got := ""
			for b := tc.stream; len(b) > 0 && got == ""; {
				k := min(step, len(b))
				got = c.scan(b[:k])
				b = b[k:]
			}
			if got != tc.want {
				t.Errorf("%s, %d bytes a read: %q, want %q", tc.name, step, got, tc.want)
			}
		}
	}
}
