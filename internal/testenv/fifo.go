package testenv

import (
	"os"
	"testing"
	"time"
)

// NotBlockedByFIFO runs fn, which is given the FIFO at fifo to read, and returns its error.
// Opening a FIFO for reading waits for a writer: when fn has not returned after 10 s the test
// fails, after opening the FIFO for writing so that fn's open returns and its goroutine ends.
func NotBlockedByFIFO(t testing.TB, fifo string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatalf("blocked 10 s on the FIFO %s", fifo)
		return nil
	}
}
