package mltransport

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Defaults applied by [NewWithConfig] to zero Config fields.
const (
	// DefaultMaxStreams bounds the inbound streams memberlist holds at
	// once: it serves each on its own goroutine and, for a push/pull,
	// allocates the size the stream's header declares (up to its own
	// 20 MiB limit) before it reads and can authenticate the state, so
	// the cap, not the byte limit, bounds that allocation: 4 streams,
	// at most 80 MiB. Push/pulls are short and a refused one is retried
	// at memberlist's next interval.
	DefaultMaxStreams = 4
	// DefaultMaxStreamBytes is the largest valid push/pull state of a
	// ring of gossip's MaxNodes (10,000) nodes, rounded up: a node costs
	// at most ~360 bytes of ring state (entry and clock entry with 64-byte
	// IDs, an IPv6 host and the longest ring id) plus ~420 bytes of
	// memberlist's own node record (name, address, 262-byte meta),
	// 10,000 × 780 B ≈ 7.8 MB, under 8 MiB with room for the encryption
	// and label headers.
	DefaultMaxStreamBytes = 8 << 20
	// DefaultMaxInboundBytes is twice DefaultMaxStreamBytes: two push/pulls
	// of the largest ring at once, or many of an ordinary one.
	DefaultMaxInboundBytes = 2 * DefaultMaxStreamBytes
	// DefaultStreamTimeout bounds a stream's whole life: memberlist
	// exchanges one push/pull (both states) or one probe per stream, and
	// a LAN moves 8 MiB in well under a second.
	DefaultStreamTimeout = 5 * time.Second
)

// ErrStreamTooLarge is returned by a stream's Read once the stream has
// carried Config.MaxStreamBytes: memberlist then drops the stream.
var ErrStreamTooLarge = errors.New("mltransport: stream exceeds its byte limit")

// Config bounds what the streams of one [Transport] may hold. The zero
// value of each field selects its default.
type Config struct {
	// Logger receives the transport's logs; nil discards them.
	Logger *slog.Logger
	// ListenPacket binds the UDP socket ("udp" and the kernel's IP and
	// port); nil = net.ListenPacket. Tests inject a fault-injecting
	// network here.
	ListenPacket func(network, addr string) (net.PacketConn, error)
	// MaxStreams bounds the inbound streams open at once (handed to
	// memberlist and not yet closed by it). A stream over the bound is
	// closed as it arrives and counted in Stats.RejectedStreams.
	// 0 = 16.
	MaxStreams int
	// MaxStreamBytes bounds what memberlist may read from one stream, in
	// bytes, inbound or dialed: a Read past it fails with
	// ErrStreamTooLarge before memberlist buffers more, and the stream is
	// counted in Stats.StreamsTooLarge. It must hold the largest state a
	// push/pull carries. 0 = 8 MiB.
	MaxStreamBytes int64
	// MaxInboundBytes bounds what memberlist may have read, in all, from
	// the inbound streams open at once (given back as each closes): with
	// MaxStreams it keeps many streams that each stay under
	// MaxStreamBytes from adding up. A Read past it fails like one past
	// MaxStreamBytes. 0 = 2 × MaxStreamBytes.
	MaxInboundBytes int64
	// StreamTimeout is the deadline of an inbound stream from the moment
	// the transport gets it; memberlist's own (TCPTimeout) deadlines
	// cannot extend it, so keep it above TCPTimeout only if a push/pull
	// may take longer (slow WAN links). Dialed streams keep memberlist's
	// deadlines. Streams whose reads hit a deadline are counted in
	// Stats.StreamTimeouts. 0 = 5 s.
	StreamTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.MaxStreams < 0 || c.MaxStreamBytes < 0 || c.MaxInboundBytes < 0 || c.StreamTimeout < 0 {
		return c, fmt.Errorf("mltransport: config: negative limit in %+v", c)
	}
	if c.MaxStreams == 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxStreamBytes == 0 {
		c.MaxStreamBytes = DefaultMaxStreamBytes
	}
	if c.MaxInboundBytes == 0 {
		c.MaxInboundBytes = 2 * c.MaxStreamBytes
	}
	if c.StreamTimeout == 0 {
		c.StreamTimeout = DefaultStreamTimeout
	}
	return c, nil
}

// takeStream takes a slot for an inbound stream; false when MaxStreams
// are open (counted).
func (t *Transport) takeStream() bool {
	t.smu.Lock()
	defer t.smu.Unlock()
	if t.openStreams >= t.cfg.MaxStreams {
		t.stats.rejectedStreams.Add(1)
		total.rejectedStreams.Add(1)
		return false
	}
	t.openStreams++
	return true
}

// releaseStream gives back a closed inbound stream's slot and the bytes
// read from it.
func (t *Transport) releaseStream(read int64) {
	t.smu.Lock()
	t.openStreams--
	t.inBytes -= read
	t.smu.Unlock()
}

// reserveIn reserves up to n bytes of MaxInboundBytes for a read and
// returns how many it got.
func (t *Transport) reserveIn(n int64) int64 {
	t.smu.Lock()
	defer t.smu.Unlock()
	n = max(min(n, t.cfg.MaxInboundBytes-t.inBytes), 0)
	t.inBytes += n
	return n
}

// unreserveIn gives back n reserved bytes that a read did not use.
func (t *Transport) unreserveIn(n int64) {
	t.smu.Lock()
	t.inBytes -= n
	t.smu.Unlock()
}

// limitedConn is a stream connection as memberlist sees it: counted (see
// Stats), failing reads past the byte limit, with deadlines clamped to the
// stream's own, and (inbound) giving its slot back on Close.
type limitedConn struct {
	net.Conn
	t        *Transport
	deadline time.Time
	inbound  bool

	mu        sync.Mutex
	left      int64 // bytes memberlist may still read
	read      int64 // bytes read, charged to MaxInboundBytes when inbound
	overLimit bool
	timedOut  bool
	closeOnce sync.Once
}

// limit wraps c for memberlist; an inbound stream's deadline starts now.
func (t *Transport) limit(c net.Conn, inbound bool) *limitedConn {
	lc := &limitedConn{Conn: c, t: t, left: t.cfg.MaxStreamBytes}
	if inbound {
		lc.inbound = true
		lc.deadline = time.Now().Add(t.cfg.StreamTimeout)
		c.SetDeadline(lc.deadline)
	}
	return lc
}

func (c *limitedConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	want := min(int64(len(b)), c.left)
	c.mu.Unlock()
	if want > 0 && c.inbound {
		want = c.t.reserveIn(want)
	}
	if want <= 0 && len(b) > 0 {
		c.mu.Lock()
		first := !c.overLimit
		c.overLimit = true
		c.mu.Unlock()
		if first {
			c.t.stats.streamsTooLarge.Add(1)
			total.streamsTooLarge.Add(1)
			c.t.log.Debug("memberlist stream over its byte limit", "remote", c.RemoteAddr().String())
		}
		return 0, fmt.Errorf("%w (%d bytes per stream, %d for all inbound streams)",
			ErrStreamTooLarge, c.t.cfg.MaxStreamBytes, c.t.cfg.MaxInboundBytes)
	}
	n, err := c.Conn.Read(b[:want])
	if c.inbound && int64(n) < want {
		c.t.unreserveIn(want - int64(n))
	}
	c.mu.Lock()
	c.left -= int64(n)
	c.read += int64(n)
	first := false
	if ne, ok := err.(net.Error); ok && ne.Timeout() && !c.timedOut {
		c.timedOut, first = true, true
	}
	c.mu.Unlock()
	if first {
		c.t.stats.streamTimeouts.Add(1)
		total.streamTimeouts.Add(1)
	}
	if n > 0 {
		c.t.stats.streamBytesIn.Add(uint64(n))
		total.streamBytesIn.Add(uint64(n))
	}
	return n, err
}

func (c *limitedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.t.stats.streamBytesOut.Add(uint64(n))
		total.streamBytesOut.Add(uint64(n))
	}
	return n, err
}

// clamp returns the earlier of d and the stream's deadline (zero d: none
// asked, the stream's); dialed streams have none of their own.
func (c *limitedConn) clamp(d time.Time) time.Time {
	if c.deadline.IsZero() {
		return d
	}
	if d.IsZero() || d.After(c.deadline) {
		return c.deadline
	}
	return d
}

func (c *limitedConn) SetDeadline(d time.Time) error      { return c.Conn.SetDeadline(c.clamp(d)) }
func (c *limitedConn) SetReadDeadline(d time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(d)) }
func (c *limitedConn) SetWriteDeadline(d time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(d)) }

// Close closes the connection and gives back its slot once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		if c.inbound {
			c.mu.Lock()
			read := c.read
			c.mu.Unlock()
			c.t.releaseStream(read)
		}
	})
	return err
}
