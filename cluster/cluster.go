package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/discover"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/metrics"
)

// DefaultCommandTimeout is the deadline of a command's ring operation when
// Config.CommandTimeout is 0. It is below notp-cli's default --timeout
// (5 s), so an operator sees the node's error rather than a client timeout.
const DefaultCommandTimeout = 4 * time.Second

// Errors returned by Node's methods. Callers branch with errors.Is.
var (
	// ErrRingMismatch: the flush file holds another ring id than the one
	// Start was given. The error's text is notp's:
	// "Loaded ring ID '<x>' does not match '<y>'".
	ErrRingMismatch = errors.New("cluster: loaded ring id does not match")
	// ErrAlreadyStarted: Start was called on a node that already started.
	// It wraps notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("cluster: %w", notp.ErrAlreadyStarted)
	// ErrNotStarted: Leave was called before Start. It wraps
	// notp.ErrNotStarted.
	ErrNotStarted = fmt.Errorf("cluster: %w", notp.ErrNotStarted)
	// ErrClosed: the node was stopped (or its Start failed half-way); a
	// Node runs once. It wraps notp.ErrClosed.
	ErrClosed = fmt.Errorf("cluster: %w", notp.ErrClosed)
	// ErrInvalidConfig: a Config field is out of range.
	ErrInvalidConfig = errors.New("cluster: invalid config")
)

// errAlreadyInRing is matched (errors.Is) to give notp's join text.
var errAlreadyInRing = gossip.ErrAlreadyInRing

// The command server's ring is the gossip ring.
var _ ringService = (*gossip.Ring)(nil)

// Config configures a Node. New copies it; later changes have no effect.
// The zero value of each optional field selects the documented default.
type Config struct {
	// Node is this node. ID is required. Host "" means os.Hostname();
	// Port 0 picks a free port, which Node.Self reports after Start (the
	// same port number carries memberlist's UDP packets, so it must be
	// free for UDP too).
	Node notp.Node
	// Cookie is the cluster secret: it authenticates every kernel
	// connection and record (and so every command), and keys memberlist's
	// encryption. "" requires Insecure. At least kernel.MinCookieLen (16)
	// bytes unless AllowWeakCookie; generate one with `notp-cli keygen`.
	Cookie string
	// Insecure must be true to run with an empty Cookie: then nothing is
	// authenticated and anyone who reaches the port can run commands. It
	// is logged as a warning.
	Insecure bool
	// AllowWeakCookie accepts a Cookie shorter than kernel.MinCookieLen,
	// for tests and demos (see kernel.Config.AllowWeakCookie).
	AllowWeakCookie bool
	// TLS, if set, encrypts the kernel's connections (commands included).
	TLS *tls.Config
	// AllowMemberCommands accepts commands from ring members (and from
	// this node itself). By default only non-members may run commands, as
	// in notp: a compromised or confused member cannot reconfigure the ring
	// through the admin channel.
	AllowMemberCommands bool
	// CommandTimeout bounds each command's ring operation (and so how long
	// one command can hold the command server); 0 = DefaultCommandTimeout.
	CommandTimeout time.Duration
	// Kernel is an optional base for the kernel's tuning (MaxFrameSize,
	// QueueLen, reconnect backoff, timeouts, stream limits, BusyPoll). Its
	// Node, Cookie, Insecure, AllowWeakCookie and TLS are set from this
	// Config, and its Logger and Now when nil.
	Kernel kernel.Config
	// Gossip configures the ring: weights (RFactor, PFactor), the flush
	// file (FlushPath, "" = no persistence: a restarted node starts with
	// an empty ring), the anti-entropy interval, the failure detector
	// (Memberlist; ListenPacket, which with Kernel.Listen and Kernel.Dial
	// lets tests run nodes over a fault-injecting network), reconnects,
	// tombstones, LazyConnect and the ring's own timeouts; see
	// gossip.Config. Its Logger and Now are set from this Config when nil.
	// All nodes of a cluster should use the same RFactor and PFactor.
	Gossip gossip.Config
	// MetricsAddr, when set, is the TCP address ("127.0.0.1:9100"; port 0
	// picks a free one, see Node.MetricsAddr) where Start serves the
	// node's Prometheus metrics at /metrics (package metrics: the
	// Node.Metrics collector, plus the Go runtime's and the process's);
	// "" = no endpoint. Stop closes it. The endpoint is unauthenticated:
	// bind it to loopback or a private interface.
	MetricsAddr string
	// Seeds are where Start finds the cluster to meet, in the background
	// (Node.MeetSeeds): host:port, DNS names that resolve to several
	// addresses (a Kubernetes headless Service) and SRV names
	// (_notp._tcp.notp.default.svc.cluster.local), resolved and retried
	// with exponential backoff and jitter until a node there answers and
	// is met. Seeds that resolve only to this node are a first node's:
	// nothing to meet. At most discover.MaxSeeds; nil = meet nobody.
	Seeds []string
	// Discovery configures the resolution and retries of Seeds (package
	// discover: resolver, backoff, budgets). Its DefaultPort, the port of
	// seeds given without one, defaults to Node.Port.
	Discovery discover.Config
	// Logger receives the logs of the node and its parts; nil discards.
	Logger *slog.Logger
	// Now is the clock of the kernel and the ring; nil = time.Now.
	Now func() time.Time
}

// Node is one cluster node: a kernel (the node's one port), the gossip
// ring (membership and ownership) and the command server ("command")
// that operators drive with notp-cli. All methods are safe for
// concurrent use.
type Node struct {
	cfg  Config
	log  *slog.Logger
	k    *kernel.Kernel
	ring *gossip.Ring
	cmd  *genserver.Server
	cs   *commandServer
	col  *metrics.Collector
	// events is the log the events command reads; evCancel ends its
	// subscription and evDone is closed when its feeder returned.
	events   *eventLog
	evCancel func()
	evDone   chan struct{}

	// seedCancel stops the background meeting of Config.Seeds; seedDone
	// is closed when it returned.
	seedCancel func()
	seedDone   chan struct{}

	mu    sync.Mutex // serialises Start, Stop and Leave's state check
	state state
	msrv  *metrics.Server // the metrics endpoint while started with MetricsAddr
}

type state uint8

const (
	stateNew state = iota
	stateStarted
	stateClosed
)

// New validates cfg and builds the node's parts without touching the
// network or the flush file: call Start. A field out of range, this
// Config's or one of Kernel's or Gossip's, fails with an error that wraps
// ErrInvalidConfig and the part's own (notp.ErrInvalidNode,
// kernel.ErrInvalidConfig, kernel.ErrWeakCookie, gossip.ErrInvalidConfig).
func New(cfg Config) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// The node's log lines at Info and above also go to its event log,
	// which notp-cli monitor streams.
	evlog := newEventLog()
	log = slog.New(newLogTee(log.Handler(), evlog))
	if cfg.Node.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("cluster: node host: %w", err)
		}
		cfg.Node.Host = h
	}
	if err := validateNode(cfg.Node); err != nil {
		return nil, fmt.Errorf("%w: Node: %w", ErrInvalidConfig, err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = DefaultCommandTimeout
	}
	kc := cfg.Kernel
	kc.Node, kc.Cookie, kc.Insecure, kc.TLS = cfg.Node, cfg.Cookie, cfg.Insecure, cfg.TLS
	kc.AllowWeakCookie = cfg.AllowWeakCookie
	if kc.Logger == nil {
		kc.Logger = log
	}
	if kc.Now == nil {
		kc.Now = cfg.Now
	}
	k, err := kernel.New(kc)
	if err != nil {
		// kernel.New fails only on its config, which holds Config.Kernel
		// and this Config's Node, Cookie and TLS settings.
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	gc := cfg.Gossip
	if gc.Logger == nil {
		gc.Logger = log
	}
	if gc.Now == nil {
		gc.Now = cfg.Now
	}
	ring, err := gossip.New(k, gc)
	if err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	srv, err := genserver.New(k, genserver.Config{Name: command.ServerName, Logger: log})
	if err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	col := metrics.New(k, ring)
	if err := col.Watch(srv); err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	n := &Node{cfg: cfg, log: log, k: k, ring: ring, cmd: srv, col: col, events: evlog}
	cs := &commandServer{
		srv: srv, ring: ring, self: k.Self, health: n.health,
		timeout: cfg.CommandTimeout, allowMembers: cfg.AllowMemberCommands, log: log,
		started: time.Now(), kernelStats: k.Stats, ringStats: ring.Stats, transportStats: ring.TransportStats, eventLog: n.events,
		keyring: k.Keyring(), syncKeys: ring.SyncKeys,
	}
	cs.register()
	n.cs = cs
	return n, nil
}

// validate checks the node's own fields and the ring's configuration, so
// that a bad value fails before the kernel is built.
func (c *Config) validate() error {
	if c.CommandTimeout < 0 {
		return fmt.Errorf("%w: CommandTimeout %v is negative", ErrInvalidConfig, c.CommandTimeout)
	}
	if len(c.Seeds) > 0 {
		dc := c.Discovery
		if dc.DefaultPort == 0 {
			dc.DefaultPort = c.Node.Port
		}
		f, err := discover.New(dc)
		if err == nil {
			err = f.Check(c.Seeds)
		}
		if err != nil {
			return fmt.Errorf("%w: Seeds: %w", ErrInvalidConfig, err)
		}
	}
	if err := c.Gossip.Validate(); err != nil {
		return fmt.Errorf("%w: Gossip: %w", ErrInvalidConfig, err)
	}
	return validateMetricsAddr(c.MetricsAddr)
}

// validateMetricsAddr accepts "" (no endpoint) or host:port with a numeric
// port 0..65535, so that a typo fails New rather than Start.
func validateMetricsAddr(addr string) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: MetricsAddr %q: %w", ErrInvalidConfig, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w: MetricsAddr %q: port %q is not a number 0..65535", ErrInvalidConfig, addr, port)
	}
	return nil
}

// validateNode is notp.Node.Validate with Port 0 allowed (a free port).
func validateNode(n notp.Node) error {
	if n.Port == 0 {
		n.Port = 1
	}
	return n.Validate()
}

// health maps each ring node's ID to its health as the failure detector
// sees it.
func (n *Node) health() map[string]string {
	ms := n.ring.Members()
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.Node.ID] = m.Health.String()
	}
	return out
}

// mismatchError is the error of Start when the loaded ring id differs.
type mismatchError struct{ loaded, want string }

func (e *mismatchError) Error() string {
	return fmt.Sprintf("cluster: Loaded ring ID '%s' does not match '%s'", e.loaded, e.want)
}

func (e *mismatchError) Unwrap() error { return ErrRingMismatch }

// Start brings the node up in the ring ringID ("" = in no ring yet; join
// one later with the join command). First it loads the flush file (when
// Config.Gossip.FlushPath is set): a corrupt file is an error, and a loaded ring
// id that differs from ringID is an error wrapping ErrRingMismatch with
// notp's text "Loaded ring ID '<x>' does not match '<y>'" — in both cases
// nothing starts and Start may be called again. Then it starts the kernel
// (listening), the command server and the ring, which with a loaded state
// rejoins its peers. When Start returns nil the node is serving.
//
// A failure after the kernel started closes the node (ErrClosed on a
// later Start).
func (n *Node) Start(ctx context.Context, ringID string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state {
	case stateStarted:
		return ErrAlreadyStarted
	case stateClosed:
		return ErrClosed
	}
	loaded, err := n.ring.Load()
	if err != nil {
		return fmt.Errorf("cluster: load %s: %w", n.cfg.Gossip.FlushPath, err)
	}
	if id := n.ring.RingID(); loaded && id != "" && id != ringID {
		return &mismatchError{loaded: id, want: ringID}
	}
	if n.cfg.Cookie == "" {
		n.log.Warn("cluster: running without a cookie: commands and ring traffic are not authenticated", "node", n.cfg.Node.ID)
	}
	if err := n.start(ctx, ringID); err != nil {
		n.state = stateClosed
		n.stopParts(context.Background())
		return err
	}
	n.state = stateStarted
	n.log.Info("cluster: node started", "node", n.k.Self().String(), "ring", ringID, "loaded", loaded)
	return nil
}

func (n *Node) start(ctx context.Context, ringID string) error {
	events, cancel := n.ring.Subscribe(eventBuffer)
	n.evCancel, n.evDone = cancel, make(chan struct{})
	go func() {
		defer close(n.evDone)
		n.events.feed(events)
	}()
	if err := n.k.Start(ctx); err != nil {
		return fmt.Errorf("cluster: start kernel: %w", err)
	}
	if err := n.cmd.Start(ctx); err != nil {
		return fmt.Errorf("cluster: start command server: %w", err)
	}
	if err := n.ring.Start(ctx, ringID); err != nil {
		return fmt.Errorf("cluster: start ring: %w", err)
	}
	if n.cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		if err := reg.Register(n.col); err != nil {
			return fmt.Errorf("cluster: metrics: %w", err)
		}
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		s, err := metrics.Listen(n.cfg.MetricsAddr, reg, n.log)
		if err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		n.msrv = s
		n.log.Info("cluster: serving metrics", "node", n.cfg.Node.ID, "addr", s.Addr().String())
	}
	n.startSeeds()
	return nil
}

// Stop stops the metrics endpoint, the command server (letting queued commands finish until ctx
// ends), the ring (which flushes its state) and the kernel, in that order,
// and waits for them. It does not leave the ring, unlike notp's stop: peers
// see the node as dead until it comes back, and a restart from the flush
// file rejoins with the ring it had. Stop is idempotent; it returns ctx's error if ctx ended before
// the parts drained, and the node is stopped either way.
func (n *Node) Stop(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == stateClosed {
		return nil
	}
	n.state = stateClosed
	err := n.stopParts(ctx)
	n.log.Info("cluster: node stopped", "node", n.cfg.Node.ID)
	return err
}

// Close stops the node at once: Stop with an already cancelled context,
// so queued commands are answered as stopped instead of handled and
// scrapes in flight are cut. It is idempotent and returns the parts'
// errors other than that cancellation.
func (n *Node) Close() error { return lifecycle.StopNow(n.Stop) }

// stopParts stops what may have started; each part's Stop is idempotent.
func (n *Node) stopParts(ctx context.Context) error {
	var errs []error
	n.stopSeeds()
	if n.msrv != nil {
		if err := n.msrv.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("cluster: stop metrics: %w", err))
		}
	}
	if err := n.cmd.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("cluster: stop command server: %w", err))
	}
	if err := n.ring.Stop(ctx); err != nil && !errors.Is(err, gossip.ErrNotStarted) {
		errs = append(errs, fmt.Errorf("cluster: stop ring: %w", err))
	}
	if err := n.k.Close(); err != nil {
		errs = append(errs, fmt.Errorf("cluster: close kernel: %w", err))
	}
	if n.evCancel != nil {
		n.evCancel() // closes the channel: the feeder returns at once
		<-n.evDone
	}
	return errors.Join(errs...)
}

// Leave leaves the ring (the ring's Leave: peers are told, this node falls
// back to a ring of its own and no ring id); the node keeps running and
// can join a ring again with the join command. Without force the leave is
// announced as calls and Leave waits (bounded by ctx) for one peer's
// acknowledgement; force announces it as casts without waiting.
func (n *Node) Leave(ctx context.Context, force bool) error {
	n.mu.Lock()
	st := n.state
	n.mu.Unlock()
	switch st {
	case stateNew:
		return ErrNotStarted
	case stateClosed:
		return ErrClosed
	}
	if err := n.ring.Leave(ctx, force); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Kernel returns the node's kernel, for registering actors (genserver.New)
// and messaging peers. Do not Close it: Stop does.
func (n *Node) Kernel() *kernel.Kernel { return n.k }

// Ring returns the node's gossip ring, for lookups (View, PreferenceList), events
// (Subscribe) and programmatic membership changes. Do not Stop it: Stop
// does.
func (n *Node) Ring() *gossip.Ring { return n.ring }

// Self returns this node: Config.Node with the host filled in and, after
// Start, the real port.
func (n *Node) Self() notp.Node { return n.k.Self() }

// Metrics returns the node's metrics collector (package metrics): it reads
// the kernel's, the ring's and watched actors' counters at each scrape.
// The command server is watched; Watch your own actors to report them.
// Register it in your own prometheus.Registry to serve it yourself, or set
// Config.MetricsAddr.
func (n *Node) Metrics() *metrics.Collector { return n.col }

// MetricsAddr returns the address of the metrics endpoint while the node
// runs with Config.MetricsAddr, nil otherwise.
func (n *Node) MetricsAddr() net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.msrv == nil || n.state != stateStarted {
		return nil
	}
	return n.msrv.Addr()
}
