package kernel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// ProtoKernel is the protocol byte of the kernel's own connections. Other
// protocols sharing the port use other bytes via [Kernel.Listen].
const ProtoKernel byte = wire.ProtoKernel

// Kernel is a node's messaging kernel: it listens on one port, keeps one
// authenticated outbound link per peer and routes messages to registered
// handlers. All methods are safe for concurrent use.
type Kernel struct {
	cfg  Config
	log  *slog.Logger
	self notp.Node

	mu       sync.Mutex
	started  bool
	closed   bool
	ln       net.Listener
	links    map[string]*link
	sessions map[*session]struct{}
	protos   map[byte]*protoListener
	admit    admission // unauthenticated connections

	handlers    sync.Map // name -> Handler
	pending     pendingMap
	pendingPool sync.Pool // of *pending (newPending)
	tags        tagGen

	cmu     sync.Mutex
	credits map[creditKey]*credit // reply streams being sent, by caller

	keys *Keyring // the accepted cookies; empty without one
	// versions is the [min, max] protocol version range the hello
	// offers: wire's, except in tests that play other releases.
	versions [2]uint64

	warnLimit rateLimit
	stats     stats
	poller    *poller // busy polling of the connections' readers
	done      chan struct{}
	wg        sync.WaitGroup
	closing   atomic.Bool // set by Close
	running   atomic.Bool // set by Start

	panicLimit rateLimit // handler panics logged at Error, at most one a second
}

// New validates and copies cfg. It does not touch the network: call Start.
func New(cfg Config) (*Kernel, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	k := &Kernel{
		cfg:      c,
		log:      c.Logger.With("node", c.Node.ID),
		self:     c.Node,
		links:    make(map[string]*link),
		sessions: make(map[*session]struct{}),
		protos:   make(map[byte]*protoListener),
		done:     make(chan struct{}),
		credits:  make(map[creditKey]*credit),
	}
	k.keys = newKeyring(k, c)
	k.versions = [2]uint64{wire.MinVersion, wire.Version}
	k.poller = newPoller(c.BusyPoll, c.MaxPollers, &k.stats)
	k.pending.init()
	k.pendingPool.New = newPending
	k.tags.now = c.Now
	return k, nil
}

// Start binds the listener on Config.Node's host and port and starts
// accepting connections. It fails with ErrClosed after Close.
func (k *Kernel) Start(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return ErrClosed
	}
	if k.started {
		return ErrAlreadyStarted
	}
	ln, err := k.cfg.Listen(ctx, "tcp", net.JoinHostPort(k.cfg.Node.Host, fmt.Sprint(k.cfg.Node.Port)))
	if err != nil {
		return fmt.Errorf("kernel: listen: %w", err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		k.self.Port = a.Port
	}
	k.ln = ln
	k.started = true
	k.running.Store(true)
	k.wg.Add(2)
	go k.acceptLoop(ln)
	go k.janitor()
	k.log.Info("kernel started", "addr", ln.Addr().String())
	return nil
}

// Close stops the kernel: it refuses new work, closes the listener and
// every connection, fails pending calls with ErrClosed and waits for its
// goroutines. Close is idempotent.
//
// Close is the kernel's only stop; unlike the module's other long-lived
// types it has no Stop(ctx), because it has no work of its own to drain:
// the requests and replies in flight belong to the handlers and callers
// above it (genserver, gossip, cluster), whose Stop(ctx) drains them
// before the kernel is closed. Close drops what is still queued or
// unwritten on the links. To flush what is queued for a peer first, call
// [Kernel.Disconnect] with force false, which waits until it is written
// or ctx ends.
func (k *Kernel) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		k.wg.Wait()
		return nil
	}
	k.closed = true
	k.closing.Store(true)
	close(k.done)
	if k.ln != nil {
		k.ln.Close()
	}
	links := k.links
	k.links = map[string]*link{}
	for _, pl := range k.protos {
		pl.close()
	}
	sessions := make([]*session, 0, len(k.sessions))
	for s := range k.sessions {
		sessions = append(sessions, s)
	}
	k.mu.Unlock()
	// Before waiting for links: a handler may be waiting for a call.
	k.pending.failAll(ErrClosed)
	for _, l := range links {
		l.stop(true)
	}
	for _, s := range sessions {
		s.close(nil)
	}
	k.wg.Wait()
	return nil
}

// openLocked returns ErrClosed after Close, ErrNotStarted before Start,
// and nil while the kernel runs. k.mu is held.
func (k *Kernel) openLocked() error {
	switch {
	case k.closed:
		return ErrClosed
	case !k.started:
		return ErrNotStarted
	}
	return nil
}

// Self returns this node, with the real port once started.
func (k *Kernel) Self() notp.Node {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.self
}

func (k *Kernel) selfID() string { return k.cfg.Node.ID }

// Addr returns the listener's address, or nil before Start.
func (k *Kernel) Addr() net.Addr {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ln == nil {
		return nil
	}
	return k.ln.Addr()
}

// ---- names ----

// isReserved reports whether name is reserved for the kernel.
func isReserved(name string) bool {
	return name == "" || strings.HasPrefix(name, "$") || strings.HasPrefix(name, "_kernel")
}

// Register routes messages addressed to name to h. It fails with
// ErrNameTaken if the name is registered and ErrReservedName for empty
// names and names starting with "$" or "_kernel".
func (k *Kernel) Register(name string, h Handler) error {
	if isReserved(name) {
		return fmt.Errorf("%w: %q", ErrReservedName, name)
	}
	if h == nil {
		return errors.New("kernel: nil handler")
	}
	if _, loaded := k.handlers.LoadOrStore(name, h); loaded {
		return fmt.Errorf("%w: %q", ErrNameTaken, name)
	}
	return nil
}

// Unregister removes name; messages to it are then unknown-name messages.
func (k *Kernel) Unregister(name string) { k.handlers.Delete(name) }

// ---- peers ----

// Connect starts the outbound link to n (idempotent; self is a no-op).
// Messages sent before the link is up are queued (Config.QueueLen). It
// fails with ErrNotStarted before Start and ErrClosed after Close.
func (k *Kernel) Connect(n notp.Node) error {
	if n.ID == k.selfID() {
		return nil
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("kernel: connect: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.openLocked(); err != nil {
		return err
	}
	if l, ok := k.links[n.ID]; ok && l.node == n {
		return nil
	} else if ok {
		// The node moved: replace the link.
		delete(k.links, n.ID)
		k.wg.Add(1)
		go func() { // stop waits for the link goroutine, which may need k.mu
			defer k.wg.Done()
			l.stop(true)
		}()
	}
	l := newLink(k, n)
	k.links[n.ID] = l
	k.wg.Add(1)
	go l.run()
	return nil
}

// Disconnect stops the link to the node with this id. A graceful
// disconnect (force false) first waits until the queued messages are
// written or ctx ends; force drops them. A link that never connected has
// nobody to deliver to: it is stopped at once either way, dropping its
// queue. Unknown ids are a no-op.
func (k *Kernel) Disconnect(ctx context.Context, id string, force bool) error {
	k.mu.Lock()
	l, ok := k.links[id]
	if ok {
		delete(k.links, id)
	}
	k.mu.Unlock()
	if !ok {
		return nil
	}
	var err error
	if !force {
		err = l.drain(ctx)
	}
	l.stop(true)
	return err
}

// Connected reports whether id is this node or a peer whose link is up
// (authenticated), as opposed to connecting or unknown.
func (k *Kernel) Connected(id string) bool {
	if id == k.selfID() {
		return true
	}
	l := k.link(id)
	return l != nil && l.active()
}

// WaitConnected waits until the link to id is up and returns nil, or
// fails fast: when a connection attempt that ends after the call fails
// (the peer refuses the connection, does not answer the hello, or has
// another cookie) it returns that attempt's error wrapped in a
// *LinkError, without waiting for the next retry. It returns an error
// wrapping ErrUnknownNode when there is no link to id (see Connect),
// ErrClosed after Close, and ctx's error when ctx ends first. id may be
// this node (always connected).
func (k *Kernel) WaitConnected(ctx context.Context, id string) error {
	if id == k.selfID() {
		return nil
	}
	l := k.link(id)
	if l == nil {
		return fmt.Errorf("%w: %s", ErrUnknownNode, id)
	}
	l.mu.Lock()
	start := l.failures
	l.mu.Unlock()
	for {
		l.mu.Lock()
		up, stopped, err, failures, ch := l.sess != nil, l.stopped, l.lastErr, l.failures, l.changed
		l.mu.Unlock()
		switch {
		case up:
			return nil
		case stopped:
			return fmt.Errorf("%w: %s", ErrInactiveConnection, id)
		case failures > start && err != nil:
			return &LinkError{Node: l.node, Err: err}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("kernel: waiting for %s: %w", id, ctx.Err())
		case <-k.done:
			return ErrClosed
		}
	}
}

// LinkError is a failed connection attempt to Node, as WaitConnected
// reports it. Err is the dial or handshake error (a *net.OpError when
// the dial failed; the hello's error, e.g. wrapping ErrBadSignature for a
// wrong cookie, when the handshake failed).
type LinkError struct {
	Node notp.Node
	Err  error
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("kernel: connect to %s at %s: %v", e.Node.ID, e.Node.Addr(), e.Err)
}

func (e *LinkError) Unwrap() error { return e.Err }

// Peers returns the nodes this kernel has links to (connected or
// connecting).
func (k *Kernel) Peers() []notp.Node {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]notp.Node, 0, len(k.links))
	for _, l := range k.links {
		out = append(out, l.node)
	}
	return out
}

func (k *Kernel) link(id string) *link {
	k.mu.Lock()
	l := k.links[id]
	k.mu.Unlock()
	return l
}

// ---- listener and protocol mux ----

func (k *Kernel) acceptLoop(ln net.Listener) {
	defer k.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := ln.Accept()
		if err != nil {
			if k.closing.Load() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			k.log.Warn("accept failed", "err", err)
			select {
			case <-k.done:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ip := remoteIP(c)
		if !k.admitConn(c, ip) {
			continue
		}
		if !k.track() {
			k.releaseConn(ip)
			c.Close()
			return
		}
		go k.serveConn(c, ip)
	}
}

// admission counts the accepted connections that are not yet through the
// hello or handed to a protocol listener, in all and per remote IP.
type admission struct {
	mu    sync.Mutex
	n     int
	perIP map[netip.Addr]int
}

// admitConn takes a pending slot for c, or closes c and counts it when
// MaxPendingConns are pending or MaxPendingPerIP from ip.
func (k *Kernel) admitConn(c net.Conn, ip netip.Addr) bool {
	a := &k.admit
	a.mu.Lock()
	var rejected *atomic.Uint64
	switch {
	case a.n >= k.cfg.MaxPendingConns:
		rejected = &k.stats.rejectedPending
	case a.perIP[ip] >= k.cfg.MaxPendingPerIP:
		rejected = &k.stats.rejectedPerIP
	default:
		if a.perIP == nil {
			a.perIP = make(map[netip.Addr]int)
		}
		a.n++
		a.perIP[ip]++
	}
	a.mu.Unlock()
	if rejected != nil {
		rejected.Add(1)
		k.warn("too many unauthenticated connections", "remote", c.RemoteAddr().String())
		c.Close()
		return false
	}
	k.stats.pendingConns.Add(1)
	return true
}

// releaseConn gives back the pending slot taken for a connection from ip.
func (k *Kernel) releaseConn(ip netip.Addr) {
	a := &k.admit
	a.mu.Lock()
	a.n--
	if a.perIP[ip]--; a.perIP[ip] <= 0 {
		delete(a.perIP, ip) // the map holds only IPs with pending connections
	}
	a.mu.Unlock()
	k.stats.pendingConns.Add(-1)
}

// remoteIP is c's remote IP (IPv4-mapped addresses unmapped); the zero
// Addr when c is not TCP.
func remoteIP(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// track adds a goroutine to the wait group unless the kernel is closed.
func (k *Kernel) track() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	k.wg.Add(1)
	return true
}

// serveConn runs an accepted connection from ip, which holds a pending
// slot until it is through the hello or handed to a protocol listener.
func (k *Kernel) serveConn(c net.Conn, ip netip.Addr) {
	defer k.wg.Done()
	release := sync.OnceFunc(func() { k.releaseConn(ip) })
	defer release()
	tuneTCP(c, k.cfg.WriteTimeout)
	deadline := time.Now().Add(k.cfg.HandshakeTimeout)
	c.SetDeadline(deadline)
	raw := c // c is replaced below; closing the TCP conn unblocks them all
	stop := context.AfterFunc(closingCtx{k}, func() { raw.Close() })
	defer stop()
	if k.cfg.TLS != nil {
		c = newPollConn(c, k.poller)
		tc := tls.Server(c, k.cfg.TLS)
		if err := tc.Handshake(); err != nil {
			k.stats.handshake.Add(1)
			k.warn("tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			return
		}
		c = tc
	}
	var p [1]byte
	if _, err := io.ReadFull(c, p[:]); err != nil {
		k.stats.unknownProto.Add(1)
		k.warn("connection sent no protocol byte", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	if p[0] == ProtoKernel {
		stop()
		k.serveKernel(c, deadline, release)
		return
	}
	k.mu.Lock()
	pl := k.protos[p[0]]
	k.mu.Unlock()
	if pl == nil {
		k.stats.unknownProto.Add(1)
		k.warn("unknown protocol byte", "remote", c.RemoteAddr().String(), "proto", p[0])
		c.Close()
		return
	}
	c.SetDeadline(time.Time{})
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case pl.ch <- c:
		release() // the listener's owner bounds what it accepted
	case <-pl.done:
		c.Close()
	case <-t.C:
		c.Close()
	}
}

// closingCtx is a context.Context done when the kernel closes.
type closingCtx struct{ k *Kernel }

func (c closingCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c closingCtx) Done() <-chan struct{}       { return c.k.done }
func (c closingCtx) Err() error {
	select {
	case <-c.k.done:
		return ErrClosed
	default:
		return nil
	}
}
func (c closingCtx) Value(any) any { return nil }

// Listen returns a listener for the connections whose first byte is proto
// (after TLS when configured). The listener is closed by its Close or by
// the kernel's Close. ProtoKernel and protocols already listened for fail,
// and so does Listen with ErrNotStarted before Start and ErrClosed after
// Close. See "Other protocols on the port" in the package doc.
func (k *Kernel) Listen(proto byte) (net.Listener, error) {
	if proto == ProtoKernel {
		return nil, fmt.Errorf("kernel: protocol %d is the kernel's", proto)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.openLocked(); err != nil {
		return nil, err
	}
	if _, ok := k.protos[proto]; ok {
		return nil, fmt.Errorf("kernel: protocol %d already has a listener", proto)
	}
	pl := &protoListener{k: k, proto: proto, addr: k.ln.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}
	k.protos[proto] = pl
	return pl, nil
}

// Dial connects to a kernel's port at addr (with TLS when configured) and
// writes the protocol byte proto. It fails with ErrNotStarted before Start
// and ErrClosed after Close.
func (k *Kernel) Dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	if err := k.checkOpen(); err != nil {
		return nil, err
	}
	c, err := k.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kernel: dial %s: %w", addr, err)
	}
	tuneTCP(c, k.cfg.WriteTimeout)
	if k.cfg.TLS != nil {
		cfg := k.cfg.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		c = newPollConn(c, k.poller)
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("kernel: tls handshake with %s: %w", addr, err)
		}
		c = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{proto}); err != nil {
		c.Close()
		return nil, fmt.Errorf("kernel: dial %s: %w", addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

type protoListener struct {
	k     *Kernel
	proto byte
	addr  net.Addr
	ch    chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (p *protoListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.ch:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *protoListener) close() { p.once.Do(func() { close(p.done) }) }

func (p *protoListener) Close() error {
	p.close()
	p.k.mu.Lock()
	if p.k.protos[p.proto] == p {
		delete(p.k.protos, p.proto)
	}
	p.k.mu.Unlock()
	return nil
}

func (p *protoListener) Addr() net.Addr { return p.addr }

// ---- logging ----

// rateLimit allows one event per interval.
type rateLimit struct{ last atomic.Int64 }

func (r *rateLimit) allow(now time.Time, every time.Duration) bool {
	n := now.UnixNano()
	l := r.last.Load()
	return n-l >= int64(every) && r.last.CompareAndSwap(l, n)
}

// warn logs a rejected connection or record at most once a second.
func (k *Kernel) warn(msg string, args ...any) {
	if k.warnLimit.allow(time.Now(), time.Second) {
		k.log.Warn(msg, args...)
	} else {
		k.log.Debug(msg, args...)
	}
}
