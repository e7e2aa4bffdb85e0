//go:build !unix

package kernel

import (
	"errors"
	"io"
	"syscall"
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

func newRawReader(syscall.RawConn) *rawReader { return nil }
