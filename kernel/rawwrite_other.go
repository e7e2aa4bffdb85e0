//go:build !unix

package kernel

import (
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// rawWriteSupported: no non-blocking socket writes on this platform; direct
// writes use the blocking net.Conn path.
const rawWriteSupported = false

type rawWriter struct{}

func newRawWriter(syscall.RawConn) *rawWriter { return nil }

func (*rawWriter) write([]byte) (int, error) {
	return 0, errors.New("kernel: raw writes unsupported")
}

type rawReader struct{ io.Reader }

func newRawReader(syscall.RawConn, *poller) *rawReader { return nil }

// Busy polling needs non-blocking reads: off on this platform.
func newPollConn(c net.Conn, _ *poller) net.Conn { return c }

func startPolling(net.Conn) {}

// pollConn wraps TLS connections' TCP conns on Unix only.
type pollConn struct{}

func basePollConn(net.Conn) *pollConn { return nil }

func (*pollConn) tryWrite(net.Conn, []byte) (bool, error) {
	return false, errors.New("kernel: raw writes unsupported")
}

func (*pollConn) flush(time.Duration) error { return nil }
