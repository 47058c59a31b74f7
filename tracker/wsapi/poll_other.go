//go:build !linux

package wsapi

// poller is Linux's (poll_linux.go); elsewhere each connection is read by a goroutine of
// its own (conn.readLoop), blocked in a read while the peer is idle.
type poller struct{}

type loop struct{}

func (*loop) batched(*conn) { panic("wsapi: no poller") }

func (c *conn) readSome(b []byte) (int, error) { return c.nc.Read(b) }

func (c *conn) shutdownFD() { panic("wsapi: no poller") }

func (c *conn) writeNow([]byte) (int, error) { panic("wsapi: no poller") }

func pollWorkers() int { return 0 }

func newPoller(*Server, int) (*poller, error) { return nil, nil }

func (*poller) prepare(*conn) bool { return false }

func (*poller) watch(*conn) bool { return false }

func (*poller) forget(*conn) {}

func (*poller) close() {}
