//go:build unix

package kernel

import (
	"errors"
	"io"
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
		m, e := sysWrite(fd, w.p[w.n:])
		if e == 0 && m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true
		case e != 0:
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

// rawReader reads from a socket through syscall.RawConn: a non-blocking
// read(2), and a wait for readability in the runtime's poller when there is
// nothing to read. It is an io.Reader for the connection's reader
// goroutine only.
type rawReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func newRawReader(rc syscall.RawConn) *rawReader {
	r := &rawReader{rc: rc}
	r.fn = r.attempt
	return r
}

func (r *rawReader) attempt(fd uintptr) bool {
	for {
		n, e := sysRead(fd, r.p)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return false // wait until readable
		case e != 0:
			r.err = e
		case n == 0:
			r.err = io.EOF
		default:
			r.n = n
		}
		return true
	}
}

func (r *rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	err := r.rc.Read(r.fn)
	n := r.n
	if err == nil {
		err = r.err
	}
	r.p = nil
	return n, err
}
