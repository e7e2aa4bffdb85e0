//go:build unix

package kernel

import (
	"errors"
	"os"
	"syscall"
)

// rawWriteSupported: this platform can write to a socket without blocking.
const rawWriteSupported = true

// rawWriter makes non-blocking writes to a socket. It is owned by the
// goroutine holding a session's write side; fn is bound once so that a
// write allocates nothing.
type rawWriter struct {
	rc     syscall.RawConn
	fn     func(fd uintptr) bool
	p      []byte
	n      int
	err    error
	called bool
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.fn = w.attempt
	return w
}

func (w *rawWriter) attempt(fd uintptr) bool {
	w.called = true
	for w.n < len(w.p) {
		m, e := syscall.Write(int(fd), w.p[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true
		case e != nil:
			w.err = e
			return true
		case m <= 0:
			return true
		}
	}
	return true // never wait for writability: the writer goroutine does
}

// write makes one non-blocking attempt to write p and returns how much the
// socket took (possibly 0 when its buffer is full).
func (w *rawWriter) write(p []byte) (int, error) {
	w.p, w.n, w.err, w.called = p, 0, nil, false
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p = nil
	if !w.called {
		// An expired deadline left by a blocking write: let the writer
		// goroutine (which sets a fresh deadline) write everything.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil
		}
		return 0, err
	}
	return n, werr
}
