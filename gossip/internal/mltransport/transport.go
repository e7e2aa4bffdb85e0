package mltransport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp/gossip/internal/advertise"
	"github.com/notp-go/notp/kernel"
)

// Proto is the kernel protocol byte of memberlist's stream connections.
// Protocol bytes are append-only: a byte once assigned to a protocol is
// never reused for another, or nodes of different versions would hand each
// other's connections to the wrong listener.
const Proto byte = 'M'

const (
	// packetBufSize is the read buffer of the UDP socket: the largest UDP
	// payload (64 KiB), as memberlist's NetTransport uses.
	packetBufSize = 65536
	// udpRecvBufSize is the socket receive buffer asked for, halved until
	// the OS accepts it (as memberlist's NetTransport does).
	udpRecvBufSize = 2 << 20
)

var (
	// ErrClosed: the transport was shut down.
	ErrClosed = errors.New("mltransport: transport shut down")
	// ErrUDPBind: the UDP socket could not be bound on the kernel's host and
	// port number (typically another process holds that UDP port).
	ErrUDPBind = errors.New("mltransport: cannot bind UDP on the kernel's port")
)

// Transport is memberlist's transport over a [kernel.Kernel]: streams are
// kernel connections with protocol byte [Proto], packets are UDP datagrams
// on the kernel's port number. Create it with [New] and hand it to
// memberlist as Config.Transport; memberlist calls Shutdown.
type Transport struct {
	k   *kernel.Kernel
	cfg Config
	log *slog.Logger
	ln  net.Listener
	udp net.PacketConn

	ip   net.IP // advertised IP; nil when the kernel listens on an unspecified address
	port int    // the kernel's port: TCP and UDP

	packetCh chan *memberlist.Packet
	streamCh chan net.Conn

	// life is cancelled by Shutdown; it bounds dials in progress. It is the
	// transport's lifetime, not a request's context.
	life   context.Context
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once
	wg     sync.WaitGroup

	smu         sync.Mutex
	openStreams int   // inbound streams handed over and not yet closed
	inBytes     int64 // bytes read (or being read) from them

	packetsIn, streamsIn atomic.Uint64 // handed to memberlist; read by tests
	stats                counters      // see Stats
	// acceptBlocked and readBlocked are true while a stream or a packet
	// waits for memberlist to take it; read by tests.
	acceptBlocked, readBlocked atomic.Bool
}

var (
	_ memberlist.Transport          = (*Transport)(nil)
	_ memberlist.NodeAwareTransport = (*Transport)(nil)
)

// New returns a transport over k with the default [Config] and logger
// (nil discards logs); see [NewWithConfig].
func New(k *kernel.Kernel, logger *slog.Logger) (*Transport, error) {
	return NewWithConfig(k, Config{Logger: logger})
}

// NewWithConfig returns a transport over k, which must be started, whose
// streams are bounded by cfg. It takes k's listener for [Proto] and binds
// UDP on the kernel's listening IP and port number; if that UDP port is
// taken it fails with an error wrapping [ErrUDPBind].
func NewWithConfig(k *kernel.Kernel, cfg Config) (*Transport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	logger, listenPacket := cfg.Logger, cfg.ListenPacket
	if listenPacket == nil {
		listenPacket = net.ListenPacket
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if k.Addr() == nil {
		return nil, fmt.Errorf("mltransport: %w", kernel.ErrNotStarted)
	}
	addr, ok := tcpAddr(k.Addr())
	if !ok {
		return nil, fmt.Errorf("mltransport: the kernel listens on %q, not an IP address and port", k.Addr())
	}
	ln, err := k.Listen(Proto)
	if err != nil {
		return nil, fmt.Errorf("mltransport: listen: %w", err)
	}
	udp, err := listenPacket("udp", addr.String())
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w %s: %w", ErrUDPBind, addr, err)
	}
	setRecvBuf(udp)
	t := &Transport{
		k:        k,
		cfg:      cfg,
		log:      logger.With("node", k.Self().ID),
		ln:       ln,
		udp:      udp,
		port:     addr.Port,
		packetCh: make(chan *memberlist.Packet),
		streamCh: make(chan net.Conn),
	}
	if !addr.IP.IsUnspecified() {
		t.ip = advertise.Canonical(addr.IP)
	}
	t.life, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(2)
	go t.acceptLoop()
	go t.readLoop()
	return t, nil
}

// tcpAddr returns a as a TCP address (nil or unparsable: false).
func tcpAddr(a net.Addr) (*net.TCPAddr, bool) {
	if a == nil {
		return nil, false
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta, true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return nil, false
	}
	return net.TCPAddrFromAddrPort(ap), true
}

// setRecvBuf asks for a large socket receive buffer so bursts of gossip are
// not dropped, halving the size until the OS accepts it.
func setRecvBuf(pc net.PacketConn) {
	c, ok := pc.(interface{ SetReadBuffer(int) error })
	if !ok {
		return
	}
	for size := udpRecvBufSize; size > 0; size /= 2 {
		if c.SetReadBuffer(size) == nil {
			return
		}
	}
}

// FinalAdvertiseAddr implements memberlist.Transport. A non-empty ip
// (memberlist's Config.AdvertiseAddr) must be an IP literal and is used as
// is; otherwise the kernel's listening IP is advertised (the kernel resolved
// a host name when it bound). The port is always the kernel's port: the
// transport listens nowhere else, so Config.AdvertisePort is ignored.
// A kernel listening on an unspecified address (0.0.0.0, ::) has no IP to
// advertise: then set memberlist's Config.AdvertiseAddr.
func (t *Transport) FinalAdvertiseAddr(ip string, _ int) (net.IP, int, error) {
	a, port, err := advertise.Addr(ip, t.ip, t.port)
	if err != nil {
		return nil, 0, fmt.Errorf("mltransport: %w", err)
	}
	return a, port, nil
}

// WriteTo implements memberlist.Transport: it sends b as one UDP datagram
// to addr ("host:port") and returns the time the write completed.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.closed.Load() {
		return time.Time{}, ErrClosed
	}
	to, err := resolveUDP(addr)
	if err != nil {
		return time.Time{}, err
	}
	n, err := t.udp.WriteTo(b, net.UDPAddrFromAddrPort(to))
	if err == nil {
		t.countPacketOut(n)
	}
	return time.Now(), err
}

// resolveUDP parses addr, resolving a host name only when addr is not an
// IP literal (memberlist passes literals). IPv4-mapped addresses are
// unmapped so they can be sent from an IPv4 socket.
func resolveUDP(addr string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", addr)
		if rerr != nil {
			return netip.AddrPort{}, fmt.Errorf("mltransport: resolve %q: %w", addr, rerr)
		}
		ap = ua.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

// WriteToAddress implements memberlist.NodeAwareTransport; the node name is
// not needed to reach a node.
func (t *Transport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh implements memberlist.Transport: incoming UDP packets, unverified
// (memberlist authenticates and decrypts them with its SecretKey).
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh implements memberlist.Transport: incoming stream connections,
// handed over by the kernel's protocol mux after its protocol byte.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// DialTimeout implements memberlist.Transport: it connects to the kernel
// port at addr with protocol byte [Proto] (over TLS when the kernel uses
// TLS). timeout bounds the dial (<= 0: no bound); Shutdown cancels it.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.closed.Load() {
		return nil, ErrClosed
	}
	ctx := t.life
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	c, err := t.k.Dial(ctx, addr, Proto)
	if err != nil {
		if t.closed.Load() {
			return nil, fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, fmt.Errorf("mltransport: %w", err)
	}
	t.countStream(false)
	return t.limit(c, false), nil
}

// DialAddressTimeout implements memberlist.NodeAwareTransport; the node
// name is not needed to reach a node.
func (t *Transport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// Shutdown implements memberlist.Transport: it releases the kernel's
// [Proto] listener (so a new Transport may take it), closes the UDP socket,
// cancels dials in progress and waits for the transport's goroutines.
// Connections already handed to memberlist are memberlist's to close.
// Shutdown is idempotent and safe to call concurrently; every call waits.
func (t *Transport) Shutdown() error {
	t.once.Do(func() {
		t.closed.Store(true)
		t.cancel()
		t.ln.Close()
		t.udp.Close()
		t.wg.Wait()
		t.log.Debug("memberlist transport shut down")
	})
	return nil
}

// Close is Shutdown, under the name every other long-lived type of the
// module uses for immediate teardown.
func (t *Transport) Close() error { return t.Shutdown() }

// acceptLoop hands the kernel's Proto connections to memberlist. It ends
// when the listener closes (Shutdown or the kernel's Close).
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if !t.closed.Load() {
				// The kernel closed before memberlist: shut memberlist
				// down first to keep its streams to the end.
				t.log.Info("memberlist stream listener closed by the kernel", "err", err)
			}
			return
		}
		if !t.takeStream() {
			t.log.Debug("memberlist stream refused: too many open", "remote", c.RemoteAddr().String(), "max", t.cfg.MaxStreams)
			c.Close()
			continue
		}
		c = t.limit(c, true)
		// Counted before the hand-off, so whoever receives it sees the
		// count (a stream dropped by Shutdown is counted too).
		t.countStream(true)
		t.acceptBlocked.Store(true)
		select {
		case t.streamCh <- c:
			t.acceptBlocked.Store(false)
		case <-t.life.Done():
			c.Close()
			return
		}
	}
}

// readLoop hands UDP packets to memberlist. Each packet gets its own
// exact-size buffer because memberlist may keep it.
func (t *Transport) readLoop() {
	defer t.wg.Done()
	buf := make([]byte, packetBufSize)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		ts := time.Now()
		if err != nil {
			if t.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient (e.g. ICMP noise); pause so a persistent error
			// cannot spin.
			t.log.Debug("udp read failed", "err", err)
			select {
			case <-t.life.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		if n < 1 {
			continue // memberlist needs a message type byte
		}
		b := make([]byte, n)
		copy(b, buf)
		p := &memberlist.Packet{Buf: b, From: from, Timestamp: ts}
		t.countPacketIn(n) // before the hand-off, as for streams
		t.readBlocked.Store(true)
		select {
		case t.packetCh <- p:
			t.readBlocked.Store(false)
		case <-t.life.Done():
			return
		}
	}
}

// Port returns the port number the transport uses for TCP and UDP (the
// kernel's port).
func (t *Transport) Port() int { return t.port }
