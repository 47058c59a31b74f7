package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// Errors of the TCP listener's access checks, as the Client reports them.
var (
	// ErrUnauthorized means the bearer token was missing or wrong (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden means the Host header did not name the listener (403).
	ErrForbidden = errors.New("forbidden")
)

// MinTokenLength is the shortest bearer token accepted.
const MinTokenLength = 16

// ReadTokenFile reads the bearer token from path: its content without surrounding white space,
// at least MinTokenLength printable ASCII characters with no space. A file others may read is
// refused: the token is the only thing between any local user and the agent.
func ReadTokenFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("token file %s is not a regular file", path)
	}
	if st.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("token file %s is readable by everyone (mode %#o): chmod o-r it", path, st.Mode().Perm())
	}
	const maxTokenFile = 4096
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return nil, fmt.Errorf("token file %s is larger than %d bytes: is it the right file?", path, maxTokenFile)
	}
	tok := bytes.TrimSpace(b)
	if len(tok) < MinTokenLength {
		return nil, fmt.Errorf("token file %s holds %d characters: want at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)", path, len(tok), MinTokenLength, path)
	}
	for _, c := range tok {
		if c <= ' ' || c > '~' {
			return nil, fmt.Errorf("token file %s: the token must be printable ASCII without spaces", path)
		}
	}
	return tok, nil
}

// AllowedHosts returns the Host header values that name the loopback TCP listener at addr:
// its own IP and port, and localhost with that port.
func AllowedHosts(addr net.Addr) []string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil
	}
	port := strconv.Itoa(ta.Port)
	return []string{net.JoinHostPort(ta.IP.String(), port), net.JoinHostPort("localhost", port)}
}

// Guard wraps h for a TCP listener: a request whose Host header is not one of hosts gets 403
// (a browser led there by DNS rebinding sends the attacker's host name), and one without
// "Authorization: Bearer TOKEN" carrying token gets 401. The Host is checked first, so a page
// cannot even probe the token. Tokens are compared in constant time; an empty token lets
// nothing through.
func Guard(h http.Handler, token []byte, hosts []string) http.Handler {
	want := sha256.Sum256(token)
	hosts = append([]string(nil), hosts...)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostAllowed(r.Host, hosts) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("host %q is not allowed: use one of %s", r.Host, strings.Join(hosts, ", ")))
			return
		}
		// Hashing first makes the comparison's time independent of the length too.
		got := sha256.Sum256(bearer(r.Header.Get("Authorization")))
		if len(token) == 0 || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="seedctl agent"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func hostAllowed(host string, hosts []string) bool {
	for _, h := range hosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// bearer returns the token of an "Authorization: Bearer TOKEN" value, or nil.
func bearer(v string) []byte {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	return []byte(strings.TrimSpace(tok))
}
