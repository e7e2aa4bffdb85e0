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
// nothing to read. When its kernel polls (Config.BusyPoll) it busy-polls
// first, for a fixed window or for an adaptive one (ad) that follows the
// gaps between the records it reads. It is an io.Reader for the
// connection's reader goroutine only.
type rawReader struct {
	rc      syscall.RawConn
	fn      func(fd uintptr) bool // read, or wait for readability
	tryFn   func(fd uintptr) bool // read once, never wait
	timedFn func(fd uintptr) bool // fn, noting when the socket was first found dry
	p       []byte
	n       int
	err     error
	again   bool      // tryFn found nothing to read
	dryAt   time.Time // timedFn found nothing to read at this time (zero: it did not)
	pl      *poller   // nil: never poll
	ad      adaptive  // the adaptive window (Config.BusyPoll 0)
	quiet   time.Time // no polling before this (the cores were contended)

	dryReads uint64 // reads that found nothing (EAGAIN); for tests
	onDry    func() // tests: called on each of them
}

func newRawReader(rc syscall.RawConn, pl *poller) *rawReader {
	r := &rawReader{rc: rc, pl: pl}
	r.fn = r.attempt
	r.tryFn = r.try
	r.timedFn = r.timed
	return r
}

func (r *rawReader) attempt(fd uintptr) bool {
	for {
		n, e := sysRead(fd, r.p)
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			r.dryReads++
			if r.onDry != nil {
				r.onDry()
			}
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

func (r *rawReader) timed(fd uintptr) bool {
	if r.attempt(fd) {
		return true
	}
	if r.dryAt.IsZero() {
		r.dryAt = time.Now()
	}
	return false
}

func (r *rawReader) Read(p []byte) (int, error) { return r.read(p, true) }

// read reads into p, busy-polling first if poll is set and the kernel
// polls.
func (r *rawReader) read(p []byte, poll bool) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.err = p, 0, nil
	var err error
	if poll && r.pl.on() {
		err = r.readPolling()
	} else {
		err = r.rc.Read(r.fn)
	}
	n := r.n
	if err == nil {
		err = r.err
	}
	r.p = nil
	return n, err
}

// readPolling reads without waiting; when the socket is dry it polls for
// the window (fixed, or the adaptive one if any, and only with one of the
// kernel's polling slots), then leaves the wait to the runtime's poller.
// An adaptive reader then sets its next window from how long the data
// took to come (nextWindow). An adaptive reader with no window (sparse or
// idle traffic) reads as one that never polls (readTimed).
func (r *rawReader) readPolling() error {
	pl := r.pl
	if pl.fixed == 0 && r.ad.window() == 0 {
		return r.readTimed()
	}
	if err := r.rc.Read(r.tryFn); err != nil || !r.again {
		return err
	}
	start := time.Now()
	w := pl.fixed
	if w == 0 {
		w = r.ad.window()
	}
	if w > 0 && start.Before(r.quiet) {
		w = 0
	}
	hit, contended := false, false
	if w > 0 {
		if pl.acquire() {
			var err error
			hit, contended, err = r.poll(start, w)
			pl.release()
			pl.st.pollNanos.Add(uint64(time.Since(start)))
			if err != nil {
				return err // closed, or a read deadline passed
			}
			switch {
			case hit:
				pl.st.pollHits.Add(1)
			case contended:
				pl.st.pollContended.Add(1)
				r.quiet = time.Now().Add(pollBackoff)
			default:
				pl.st.pollMisses.Add(1)
			}
		} else {
			pl.st.pollCapped.Add(1)
		}
	}
	var err error
	if !hit {
		err = r.rc.Read(r.fn)
	}
	if pl.fixed == 0 && err == nil && r.err == nil {
		if contended {
			r.ad.stop()
		} else {
			r.ad.update(time.Since(start), hit)
		}
	}
	return err
}

// readTimed is an adaptive reader's read while it does not poll: the
// read(2) calls of a reader that never polls (one, and when the socket is
// dry a wait in the runtime's poller and one more), so sparse traffic
// costs what it costs with polling off, plus reading the clock when the
// socket was dry, to time how long the data took to come.
func (r *rawReader) readTimed() error {
	r.dryAt = time.Time{}
	err := r.rc.Read(r.timedFn)
	if err == nil && r.err == nil && !r.dryAt.IsZero() {
		r.ad.update(time.Since(r.dryAt), false)
	}
	return err
}

// poll reads without waiting, yielding the processor to other goroutines
// between attempts, until something arrives (hit), the socket fails, w has
// passed since start, or one attempt took longer than pollContended
// (contended: the thread was preempted, or the process has other work to
// run; spinning there only keeps the peer, or that work, waiting).
func (r *rawReader) poll(start time.Time, w time.Duration) (hit, contended bool, err error) {
	last := start
	for {
		runtime.Gosched()
		if err := r.rc.Read(r.tryFn); err != nil {
			return false, false, err
		}
		if !r.again {
			return true, false, nil
		}
		now := time.Now()
		if now.Sub(last) > time.Duration(pollContended.Load()) {
			return false, true, nil
		}
		if now.Sub(start) >= w {
			return false, false, nil
		}
		last = now
	}
}

// pollConn is the TCP connection under TLS. It reads and writes with raw
// syscalls like a plain session (no blocking-syscall bookkeeping, whose
// monitor-thread wake-ups cost a TLS session as much as they did plain
// ones), and busy-polls as the kernel's Config.BusyPoll says once the
// kernel protocol starts on it (poll set); other protocols on the port
// never poll.
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
func newPollConn(c net.Conn, pl *poller) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &pollConn{TCPConn: tc, r: newRawReader(rc, pl), w: newRawWriter(rc)}
}

func (c *pollConn) Read(p []byte) (int, error) {
	return c.r.read(p, c.poll.Load())
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

// startPolling lets the TCP connection under a TLS connection busy-poll
// (as its kernel's Config.BusyPoll says), if it was wrapped by newPollConn.
func startPolling(c net.Conn) {
	if pc := basePollConn(c); pc != nil {
		pc.poll.Store(true)
	}
}
