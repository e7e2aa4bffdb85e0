package kernel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// Defaults applied by [New] to zero Config fields.
const (
	DefaultMaxFrameSize     = 8 << 20
	DefaultQueueLen         = 1024
	DefaultReconnectMin     = 50 * time.Millisecond
	DefaultReconnectMax     = 5 * time.Second
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultCallTimeout      = 30 * time.Second
	DefaultMaxStreamSize    = 10_000_000
	DefaultStreamTimeout    = 30 * time.Second
	DefaultMaxPendingConns  = 256
	DefaultMaxPendingPerIP  = 32
	DefaultMaxPeerBytes     = 64 << 20
	// ChunkSize is the largest payload carried by one frame; larger
	// payloads are split into a stream of chunks on the wire.
	ChunkSize = 64 << 10
	// StreamWindow is how many chunks a ReplyStream may send ahead of the
	// caller's reading before it waits for credit (a protocol constant).
	StreamWindow = 16
)

// StreamWindow is the protocol's window: this fails to compile if they differ.
const _ = uint(StreamWindow-wire.StreamWindow) + uint(wire.StreamWindow-StreamWindow)

// ErrInvalidConfig: a Config field is out of range. [New] wraps it in
// every error it returns, together with the cause where there is one
// (notp.ErrInvalidNode, ErrInsecure, ErrWeakCookie, ErrKeyringFull).
var ErrInvalidConfig = errors.New("kernel: invalid config")

// Config configures a [Kernel]. The zero value of each field selects the
// documented default. New copies the Config; later changes have no effect.
type Config struct {
	// Node is this node. ID is required. Host:Port is where the kernel
	// listens and what peers dial; Port 0 picks a free port, which Self
	// then reports. The hello carries Self, and peers refuse a hello whose
	// node does not pass notp.Node.Validate, so a kernel that connects to
	// others needs a non-empty Host.
	Node notp.Node
	// Cookie is the shared cluster secret. It authenticates every
	// connection (hello proofs) and every record (per-session HMAC keys),
	// through keys derived from its argon2id stretching (see the package
	// doc's Security model). It must be at least [MinCookieLen] bytes
	// unless AllowWeakCookie is set; generate one with `notp-cli keygen`.
	Cookie string
	// Keys are further cookies accepted from the start, besides Cookie,
	// which stays the one this node proves with: the [Keyring]'s initial
	// content (at most MaxKeys with Cookie; duplicates are ignored). Each
	// is held to Cookie's length rule. Change them at runtime with
	// [Kernel.Keyring].
	Keys []string
	// KeyRetireGrace bounds how long a connection opened by a peer with a
	// key that [Keyring.Remove] removed stays open, waiting for the peer
	// to move to its new key and close it. 0 = 10 s.
	KeyRetireGrace time.Duration
	// Insecure must be true to run with an empty Cookie; then nothing is
	// authenticated (the hello still tells peers who is who).
	Insecure bool
	// AllowWeakCookie accepts a non-empty Cookie shorter than
	// [MinCookieLen] bytes, for tests and demos. A short cookie can be
	// guessed by anyone who captures one handshake proof.
	AllowWeakCookie bool
	// TLS, if set, is used for the listener and for dialing peers. The
	// cookie is checked inside TLS as well, and the hello binds the TLS
	// channel, so a relay terminating TLS on each side cannot splice two
	// sessions. MinVersion is raised to TLS 1.2 whatever it is here.
	TLS *tls.Config
	// MaxFrameSize is the largest frame (and record) accepted, in bytes;
	// larger ones close the connection. 0 = 8 MiB.
	MaxFrameSize int
	// QueueLen bounds the per-peer queue of messages sent while the link
	// is (re)connecting; the oldest is dropped when full (a dropped call
	// fails with ErrQueueFull). 0 = 1024.
	QueueLen int
	// ReconnectMin is the first reconnect backoff, doubled (with jitter)
	// after each failure up to ReconnectMax. 0 = 50 ms.
	ReconnectMin time.Duration
	// ReconnectMax caps the reconnect backoff. 0 = 5 s.
	ReconnectMax time.Duration
	// HandshakeTimeout bounds the protocol byte, TLS and hello exchange of
	// a connection. 0 = 5 s.
	HandshakeTimeout time.Duration
	// WriteTimeout is the deadline of each socket write; a peer that does
	// not read for that long loses its connection. 0 = 10 s.
	WriteTimeout time.Duration
	// CallTimeout is the deadline of a Call, MultiCall, Ping or CallStream
	// whose ctx has none. 0 = 30 s; negative = no deadline.
	CallTimeout time.Duration
	// MaxStreamSize bounds a reassembled streamed request or reply, in
	// bytes. 0 = 10 MB.
	MaxStreamSize int64
	// StreamTimeout is the idle timeout of a partial incoming stream,
	// refreshed by each chunk. 0 = 30 s.
	StreamTimeout time.Duration
	// MaxPendingConns bounds the accepted connections that are not yet
	// through the hello (or, for another protocol, not yet taken by its
	// listener). A connection over the bound is closed at once and counted
	// in Stats.RejectedPending. Each pending connection costs a goroutine
	// and a file descriptor for up to HandshakeTimeout. 0 = 256.
	MaxPendingConns int
	// MaxPendingPerIP bounds the pending connections from one remote IP
	// address, so one host cannot take all of MaxPendingConns; over it a
	// connection is closed at once and counted in Stats.RejectedPerIP.
	// 0 = 32.
	MaxPendingPerIP int
	// MaxPeerBytes is the byte budget of one authenticated connection:
	// its partial incoming streams, its bytes not yet written and its
	// messages that handlers hold ([Message.Hold]). A stream chunk that
	// would take the connection over it aborts that stream
	// (CodeBufferLimit, counted in Stats.BudgetStreamAborts); while held
	// messages exceed it the connection's reader stops reading. Unwritten
	// replies have their own, lower mark (see the package doc's Budgets). 0 = 64 MiB or MaxStreamSize if larger; it may not be
	// below MaxStreamSize, or no stream of that size could arrive.
	MaxPeerBytes int64
	// BusyPoll sets how a connection's reader that finds its socket dry
	// polls it (non-blocking reads, yielding the processor between them)
	// before it sleeps in the runtime's poller. A sleeping reader is woken
	// by the operating system, which costs tens of microseconds per
	// message on virtual machines; a polling one sees the next message at
	// once (the sequential call p50 of bench/cmd/kernelbench falls from
	// ~35 to ~11–14 µs).
	//
	// 0 (the default) is adaptive: each reader polls only while the data
	// it waits for keeps coming within 200 µs of its socket running dry
	// (three times in a row to start), for a window that starts at 10 µs,
	// doubles (up to 200 µs) each time the data came just after it,
	// halves when the data comes well inside it, and drops to nothing the
	// first time the socket stays dry for longer than 200 µs. A
	// request/response loop polls; a connection with sparse or idle
	// traffic does not, and costs no CPU.
	//
	// Positive: a fixed window, polled after every read that finds the
	// socket dry (at most 1 s): each connection may keep a core busy for
	// up to BusyPoll after every burst of traffic.
	//
	// Negative ([BusyPollOff]): never poll.
	//
	// Either way at most MaxPollers readers poll at once, and a reader
	// pauses polling for 20 ms when the cores are oversubscribed (see the
	// package doc). Stats.PollHits, PollMisses, PollNanos, PollCapped and
	// PollContended tell whether polling pays.
	// Plain TCP and TLS on Unix; no effect elsewhere.
	BusyPoll time.Duration
	// MaxPollers caps how many of the kernel's connection readers busy-poll
	// at the same time; a reader that finds the cap reached sleeps in the
	// poller at once (Stats.PollCapped), so a busy node does not spend all
	// its cores spinning. 0 = GOMAXPROCS-1 (at least 1) at New; negative
	// is an error.
	MaxPollers int
	// Logger receives the kernel's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (used for reply-tag base rotation); nil = time.Now.
	Now func() time.Time
	// Listen binds the kernel's TCP listener (Start calls it once with
	// "tcp" and Node's host:port); nil = a net.ListenConfig's Listen.
	// Dial opens every outgoing TCP connection (kernel links and
	// [Kernel.Dial]); nil = a net.Dialer's DialContext. They exist so tests
	// can run nodes over a fault-injecting network; connections that are
	// not *net.TCPConn skip the kernel's raw-socket fast paths.
	Listen func(ctx context.Context, network, addr string) (net.Listener, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
}

// withDefaults returns a validated copy of c with the documented defaults
// in place of zero fields.
func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	for _, step := range []func(*Config) error{
		(*Config).checkIdentity,
		(*Config).checkKeys,
		(*Config).defaultLimits,
		(*Config).defaultPolling,
		(*Config).defaultHooks,
	} {
		if err := step(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// checkIdentity checks the node and the cookie.
func (c *Config) checkIdentity() error {
	if c.Node.ID == "" {
		return fmt.Errorf("%w: %w: empty id", ErrInvalidConfig, notp.ErrInvalidNode)
	}
	if c.Node.Port < 0 || c.Node.Port > notp.MaxPort {
		return fmt.Errorf("%w: %w: port %d", ErrInvalidConfig, notp.ErrInvalidNode, c.Node.Port)
	}
	if c.Cookie == "" && !c.Insecure {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, ErrInsecure)
	}
	if n := len(c.Cookie); n > 0 && n < MinCookieLen && !c.AllowWeakCookie {
		return fmt.Errorf("%w: %w: cookie is %d bytes, need at least %d; generate one with `notp-cli keygen`, or set Config.AllowWeakCookie for tests and demos",
			ErrInvalidConfig, ErrWeakCookie, n, MinCookieLen)
	}
	return nil
}

// checkKeys checks the further accepted cookies and copies their slice.
func (c *Config) checkKeys() error {
	if len(c.Keys) == 0 {
		return nil
	}
	if c.Cookie == "" {
		return fmt.Errorf("%w: Keys without a Cookie: %w", ErrInvalidConfig, ErrInsecure)
	}
	if len(c.Keys)+1 > MaxKeys {
		return fmt.Errorf("%w: %w: %d keys with Cookie, at most %d", ErrInvalidConfig, ErrKeyringFull, len(c.Keys)+1, MaxKeys)
	}
	for i, key := range c.Keys {
		if err := checkCookie(key, c.AllowWeakCookie); err != nil {
			return fmt.Errorf("%w: Keys[%d]: %w", ErrInvalidConfig, i, err)
		}
	}
	c.Keys = slices.Clone(c.Keys)
	return nil
}

// defaultLimits fills in and checks the sizes, queues and timeouts.
func (c *Config) defaultLimits() error {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = DefaultMaxFrameSize
	}
	if c.MaxFrameSize < 2*ChunkSize {
		return fmt.Errorf("%w: MaxFrameSize %d below %d", ErrInvalidConfig, c.MaxFrameSize, 2*ChunkSize)
	}
	if c.QueueLen <= 0 {
		c.QueueLen = DefaultQueueLen
	}
	def(&c.ReconnectMin, DefaultReconnectMin)
	def(&c.ReconnectMax, DefaultReconnectMax)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	def(&c.KeyRetireGrace, DefaultKeyRetireGrace)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	if c.CallTimeout == 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.MaxStreamSize <= 0 {
		c.MaxStreamSize = DefaultMaxStreamSize
	}
	def(&c.StreamTimeout, DefaultStreamTimeout)
	if c.MaxPendingConns <= 0 {
		c.MaxPendingConns = DefaultMaxPendingConns
	}
	if c.MaxPendingPerIP <= 0 {
		c.MaxPendingPerIP = DefaultMaxPendingPerIP
	}
	if c.MaxPeerBytes <= 0 {
		c.MaxPeerBytes = max(DefaultMaxPeerBytes, c.MaxStreamSize)
	}
	if c.MaxPeerBytes < c.MaxStreamSize {
		return fmt.Errorf("%w: MaxPeerBytes %d below MaxStreamSize %d", ErrInvalidConfig, c.MaxPeerBytes, c.MaxStreamSize)
	}
	return nil
}

// defaultPolling checks BusyPoll and fills in MaxPollers.
func (c *Config) defaultPolling() error {
	if c.BusyPoll > time.Second {
		return fmt.Errorf("%w: BusyPoll %v above 1s (0 = adaptive, negative = off)", ErrInvalidConfig, c.BusyPoll)
	}
	if c.BusyPoll < 0 {
		c.BusyPoll = BusyPollOff
	}
	if c.MaxPollers < 0 {
		return fmt.Errorf("%w: MaxPollers %d is negative (0 = GOMAXPROCS-1)", ErrInvalidConfig, c.MaxPollers)
	}
	if c.MaxPollers == 0 {
		c.MaxPollers = defaultMaxPollers()
	}
	return nil
}

// defaultHooks fills in the logger, the clock and the network hooks, and
// copies the TLS config with its minimum version raised to TLS 1.2.
func (c *Config) defaultHooks() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TLS != nil {
		c.TLS = c.TLS.Clone()
		// Older versions have known weaknesses, and the hello's channel
		// binding needs exported keying material, which Go only offers
		// from TLS 1.2 (with extended master secret) up.
		if c.TLS.MinVersion < tls.VersionTLS12 {
			c.TLS.MinVersion = tls.VersionTLS12
		}
	}
	if c.Listen == nil {
		c.Listen = new(net.ListenConfig).Listen
	}
	if c.Dial == nil {
		c.Dial = new(net.Dialer).DialContext
	}
	return nil
}
