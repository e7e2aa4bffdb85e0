//go:build unix

package kernel

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rawWriteSupported: this platform can write to a socket without blocking.
const rawWriteSupported = true

// rawWriter makes non-blocking writes to a socket. It is owned by the
// goroutine holding a session's write side; fn is bound once so that a
// write allocates nothing.
type rawWriter struct {
	rc     syscall.RawConn
	fn     func(fd uintptr) bool // write without waiting
	waitFn func(fd uintptr) bool // write everything, waiting as needed
	p      []byte
	n      int
	err    error
	called bool
}

func newRawWriter(rc syscall.RawConn) *rawWriter {
	w := &rawWriter{rc: rc}
	w.fn = w.attempt
	w.waitFn = w.attemptAll
	return w
}

// attemptAll writes until everything is written or the socket fails,
// asking the poller to wait for writability whenever the buffer is full.
func (w *rawWriter) attemptAll(fd uintptr) bool {
	w.attempt(fd)
	return w.err != nil || w.n == len(w.p)
}

// writeAll writes all of p, waiting in the runtime's poller (which
// honours the write deadline) when the socket is full: net.Conn.Write
// without the runtime's blocking-syscall bookkeeping.
func (w *rawWriter) writeAll(p []byte) (int, error) {
	w.p, w.n, w.err = p, 0, nil
	err := w.rc.Write(w.waitFn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.p = nil
	return n, err
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
// nothing to read. With a positive spin it busy-polls first (see
// Config.BusyPoll). It is an io.Reader for the connection's reader
// goroutine only.
type rawReader struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // read, or wait for readability
	tryFn func(fd uintptr) bool // read once, never wait
	p     []byte
	n     int
	err   error
	again bool // tryFn found nothing to read
	spin  time.Duration
	st    *stats
}

func newRawReader(rc syscall.RawConn, spin time.Duration, st *stats) *rawReader {
	r := &rawReader{rc: rc, spin: spin, st: st}
	r.fn = r.attempt
	r.tryFn = r.try
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

func (r *rawReader) try(fd uintptr) bool {
	r.again = !r.attempt(fd)
	return true
}

func (r *rawReader) Read(p []byte) (int, error) { return r.read(p, r.spin) }

// read reads into p, busy-polling for up to spin first.
func (r *rawReader) read(p []byte, spin time.Duration) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	var err error
	if spin <= 0 || !r.poll(&err, spin) {
		err = r.rc.Read(r.fn)
	}
	n := r.n
	if err == nil {
		err = r.err
	}
	r.p = nil
	return n, err
}

// poll reads without waiting, yielding the processor between attempts,
// until something arrives, the socket fails, or r.spin has passed since the
// first attempt found nothing. It reports false in the last case, leaving
// the wait to the runtime's poller.
func (r *rawReader) poll(errp *error, spin time.Duration) bool {
	var start time.Time
	for i := 0; ; i++ {
		if err := r.rc.Read(r.tryFn); err != nil {
			*errp = err // closed, or a read deadline passed
			return true
		}
		if !r.again {
			if i > 0 {
				r.st.pollHits.Add(1)
			}
			return true
		}
		if i == 0 {
			start = time.Now()
		} else if time.Since(start) >= spin {
			r.st.pollMisses.Add(1)
			return false
		}
		runtime.Gosched()
	}
}

// pollConn is the TCP connection under TLS. It reads and writes with raw
// syscalls like a plain session (no blocking-syscall bookkeeping, whose
// monitor-thread wake-ups cost a TLS session as much as they did plain
// ones), and busy-polls (Config.BusyPoll) once the kernel protocol starts
// on it (poll set); other protocols on the port never poll.
//
// A kernel session also writes TLS records through it without blocking
// (tryWrite): what the socket does not take waits in tail, and every later
// write, blocking or not, goes after it.
type pollConn struct {
	*net.TCPConn
	r    *rawReader
	poll atomic.Bool

	wmu      sync.Mutex // tls.Conn writes one record at a time; this makes sure
	w        *rawWriter
	nonblock bool   // Write keeps what the socket does not take in tail
	tail     []byte // accepted, not yet written
}

// newPollConn wraps a TCP connection, or returns c as it is.
func newPollConn(c net.Conn, spin time.Duration, st *stats) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &pollConn{TCPConn: tc, r: newRawReader(rc, spin, st), w: newRawWriter(rc)}
}

func (c *pollConn) Read(p []byte) (int, error) {
	if c.poll.Load() {
		return c.r.Read(p)
	}
	return c.r.read(p, 0)
}

func (c *pollConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.nonblock {
		n := 0
		if len(c.tail) == 0 {
			var err error
			if n, err = c.w.write(p); err != nil {
				return n, err
			}
		}
		c.tail = append(c.tail, p[n:]...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.w.writeAll(p)
}

func (c *pollConn) flushLocked() error {
	if len(c.tail) == 0 {
		return nil
	}
	_, err := c.w.writeAll(c.tail)
	c.tail = recycle(c.tail)
	return err
}

// tryWrite writes p through the TLS connection tc over c without blocking
// and reports whether some of it still waits in c's tail (for flush).
func (c *pollConn) tryWrite(tc net.Conn, p []byte) (pending bool, err error) {
	c.wmu.Lock()
	c.nonblock = true
	c.wmu.Unlock()
	_, err = tc.Write(p)
	c.wmu.Lock()
	c.nonblock = false
	pending = len(c.tail) > 0
	c.wmu.Unlock()
	return pending, err
}

// flush writes c's tail, if any, waiting as needed for up to timeout.
func (c *pollConn) flush(timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.tail) == 0 {
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	return c.flushLocked()
}

// basePollConn returns the pollConn under a TLS connection, or nil.
func basePollConn(c net.Conn) *pollConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		pc, _ := tc.NetConn().(*pollConn)
		return pc
	}
	return nil
}

// startPolling makes the TCP connection under a TLS connection busy-poll,
// if it was wrapped by newPollConn.
func startPolling(c net.Conn) {
	if pc := basePollConn(c); pc != nil {
		pc.poll.Store(true)
	}
}
