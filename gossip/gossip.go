package gossip

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/gossip/internal/mltransport"
	"github.com/notp-go/notp/internal/event"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrAlreadyInRing: Join (or Start with another ring id) on a node that
	// is in a ring. The message names the ring, as notp's does.
	ErrAlreadyInRing = errors.New("gossip: already in a ring")
	// ErrNotInRing: the operation needs a ring (Meet, Leave).
	ErrNotInRing = errors.New("gossip: not in a ring")
	// ErrCorrupt: the flush file could not be decoded or is invalid.
	ErrCorrupt = codec.ErrCorrupt
	// ErrClosed: the ring was stopped. It wraps notp.ErrClosed.
	ErrClosed = fmt.Errorf("gossip: %w", notp.ErrClosed)
	// ErrNotStarted: the operation needs Start first. It wraps
	// notp.ErrNotStarted.
	ErrNotStarted = fmt.Errorf("gossip: %w", notp.ErrNotStarted)
	// ErrAlreadyStarted: Start was called twice. It wraps
	// notp.ErrAlreadyStarted.
	ErrAlreadyStarted = fmt.Errorf("gossip: %w", notp.ErrAlreadyStarted)
	// ErrNilKernel: New was given a nil kernel. It wraps notp.ErrNilKernel.
	ErrNilKernel = fmt.Errorf("gossip: %w", notp.ErrNilKernel)
	// ErrInvalidConfig: a Config field is out of range (see
	// Config.Validate).
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrInvalidNode: a node argument is invalid (see notp.Node.Validate).
	ErrInvalidNode = errors.New("gossip: invalid node")
	// ErrInvalidWeight: a weight above MaxWeight.
	ErrInvalidWeight = errors.New("gossip: invalid weight")
	// ErrInvalidRingID: an empty or malformed ring id.
	ErrInvalidRingID = errors.New("gossip: invalid ring id")
	// ErrRingFull: a change would make the ring hold more than MaxNodes
	// entries (once every tombstone it may evict is gone) or more than
	// Config.MaxTokens live tokens.
	ErrRingFull = errors.New("gossip: ring full")
)

// Defaults applied by New to zero Config fields.
const (
	DefaultInterval      = time.Second
	DefaultFlushInterval = time.Second
	DefaultCallTimeout   = 5 * time.Second
	DefaultTombstoneTTL  = 24 * time.Hour
	// DefaultMaxLinks is the default Config.MaxLinks.
	DefaultMaxLinks = 256
	// Fanout is the number of random gossip neighbours a state is pushed
	// to in each round (notp's 2).
	Fanout = 2
)

// Config configures a Ring. New copies it; later changes have no effect.
// The zero value selects every default; negative values are invalid.
type Config struct {
	// RFactor is the weight (tokens) of a node inserted with weight ≤ 0.
	// 0 = 3.
	RFactor int
	// PFactor is the default number of neighbours; PFactor+1 is the
	// default length of PreferenceList and Neighbourhood. 0 = 2.
	PFactor int
	// Interval is the anti-entropy poll period: each tick sends a checksum
	// of the clock to one random gossip neighbour, which answers (with its
	// clock, then states are exchanged) only if the checksums differ; it
	// bounds how long a node a rumour missed waits. It also paces health
	// checks, rejoin attempts, dead-node removal and tombstone collection.
	// 0 = 1 s.
	Interval time.Duration
	// FlushPath is the state file; "" = no persistence.
	FlushPath string
	// FlushInterval bounds how often a changed state is written. 0 = 1 s.
	FlushInterval time.Duration
	// AutoRemoveDeadAfter, when > 0, removes a ring node that memberlist
	// has reported dead for that long; the removal is made by the alive
	// ring member with the lowest ID. 0 = off: membership stays
	// admin-driven, as in notp.
	AutoRemoveDeadAfter time.Duration
	// TombstoneTTL is how long a removal is remembered (and gossiped) before
	// it is forgotten. A replica partitioned away for longer than this may
	// bring a removed node back. 0 = 24 h.
	TombstoneTTL time.Duration
	// CallTimeout is the deadline of requests (Meet's and Leave's
	// acknowledgements, graceful disconnects, memberlist leave) when ctx
	// has none. 0 = 5 s.
	CallTimeout time.Duration
	// MaxTokens caps the ring's tokens: the sum of the weights of its live
	// nodes. A local change beyond it fails with ErrRingFull and received
	// entries beyond it are refused (EventRefused), so weights cannot make
	// a hash ring of billions of tokens (a token takes about 100 bytes in
	// chash's tree and lookup tables). 0 = DefaultMaxTokens (MaxNodes
	// nodes of the default weight: 1.28M tokens, some 130 MB of ring).
	// Nodes heavier than the default fill it with fewer nodes.
	MaxTokens int
	// LazyConnect: when false (the default, as in notp) the kernel is
	// connected to every node added to the ring; when true links are only
	// opened when gossip (or another component) first sends to a node,
	// which keeps large rings (hundreds of nodes) from holding a full mesh.
	LazyConnect bool
	// MaxLinks bounds the kernel links gossip opens ahead of need when
	// LazyConnect is false: once the kernel holds this many links, further
	// ring members are connected on first send, as with LazyConnect
	// (Stats.LinksDeferred counts them). Sends go to O(log N) neighbours,
	// so a ring of thousands of nodes never needs a full mesh.
	// 0 = DefaultMaxLinks.
	MaxLinks int
	// Reconnect configures the reconnect loop that joins memberlist
	// through ring members it reports dead or does not know; the zero
	// value selects its defaults (a retry after 2 s, backing off to 30 s,
	// for 24 h).
	Reconnect ReconnectConfig
	// Memberlist is an optional base memberlist configuration (tests use
	// short probe and gossip intervals); nil = memberlist.DefaultLANConfig().
	// Name, Transport, SecretKey, Delegate, Events, Alive, Merge and the
	// logger are always set by gossip, and a DeadNodeReclaimTime of 0
	// becomes DefaultDeadNodeReclaimTime. It is copied.
	Memberlist *memberlist.Config
	// ListenPacket binds the UDP socket of memberlist's packets; nil =
	// net.ListenPacket. Tests inject a fault-injecting network here (and
	// in the kernel's Config.Listen and Config.Dial).
	ListenPacket func(network, addr string) (net.PacketConn, error)
	// Logger receives logs; nil discards them. memberlist's own log lines
	// go to it at debug level.
	Logger *slog.Logger
	// Now is the wall clock (entry and clock timestamps, events, tombstone
	// ages); nil = time.Now.
	Now func() time.Time
}

// Stats are a Ring's counters.
type Stats struct {
	MessagesSent     uint64 // ring messages cast or called
	SendErrors       uint64 // sends the kernel refused
	MessagesReceived uint64 // ring messages handed to the ring
	MessagesRejected uint64 // undecodable or invalid messages, wrong ring
	InboxDrops       uint64 // messages dropped because the ring was busy
	Merges           uint64 // received states that changed the local state
	Conflicts        uint64 // received states concurrent with the local one
	PushPulls        uint64 // memberlist state exchanges merged
	EventsDropped    uint64 // events dropped on full subscriber channels
	Flushes          uint64 // state files written
	FlushErrors      uint64 // failed writes
	TombstonesGCed   uint64 // tombstones collected
	AutoRemoved      uint64 // nodes removed by AutoRemoveDeadAfter
	// EntriesRefused counts live entries refused because the ring was
	// full (MaxNodes entries or MaxTokens tokens); see EventRefused.
	EntriesRefused uint64
	// TombstonesEvicted counts tombstones dropped early to make room for
	// new entries under MaxNodes.
	TombstonesEvicted uint64
	// LinksDeferred counts ring members not connected ahead of need
	// because the kernel held Config.MaxLinks links.
	LinksDeferred uint64
	// Panics counts panics recovered in the loop goroutine (handling a
	// message, a poll, a flush) and in push/pull merges; each is logged
	// with its stack. It should
	// stay 0: a non-zero value is a bug worth reporting.
	Panics uint64
	// RingRepairs counts polls that found the published hash ring out of
	// step with the entries and rebuilt it (a safety net; it should stay
	// 0 — a non-zero value is logged and worth a bug report).
	RingRepairs uint64
	// ReconnectAttempts counts memberlist joins the reconnect loop made
	// through ring members memberlist reported dead or did not know.
	ReconnectAttempts uint64
	// Reconnects counts those joins that reached their member (each also
	// emits EventReconnected).
	Reconnects uint64
}

type counter struct{ v atomic.Uint64 }

func (c *counter) add()         { c.v.Add(1) }
func (c *counter) load() uint64 { return c.v.Load() }

type counters struct {
	sent, sendErr, recv, rejected, inboxDrops, merges, conflicts, pushPulls,
	flushes, flushErr, gced, autoRemoved, repairs,
	refused, evicted, linksDeferred, panics,
	reconnAttempts, reconnected counter
}

// Ring is one node's view of the cluster's hash ring, kept in agreement
// with the other members by gossip. Create it with New, optionally Load,
// then Start. All methods are safe for concurrent use.
type Ring struct {
	cfg  Config
	k    *kernel.Kernel
	log  *slog.Logger
	now  func() time.Time
	self string // node ID

	ring atomic.Pointer[chash.Ring] // derived from live entries; never modified once published

	// opMu serialises lifecycle and admin operations (Start, Stop, Join,
	// Leave, Meet, Insert…), including their sends. It is never taken by
	// memberlist callbacks or the kernel handler.
	opMu    sync.Mutex
	started bool
	stopped bool
	ml      *memberlist.Memberlist // nil while not in a ring
	mlDel   *mlDelegate
	// mlRef mirrors ml for the loop goroutine, which never takes opMu
	// (an admin operation holding opMu may wait for another node's loop).
	mlRef atomic.Pointer[memberlist.Memberlist]
	// mlKeyring is memberlist's keyring while in a ring with a cookie,
	// kept in step with the kernel's (SyncKeys, under keysMu).
	mlKeyring atomic.Pointer[memberlist.Keyring]
	keysMu    sync.Mutex
	// trMu guards tr, the transport of the running memberlist, and
	// trDone, the counters of the transports of earlier ones, whose sum
	// is TransportStats.
	trMu   sync.Mutex
	tr     *mltransport.Transport
	trDone mltransport.Stats

	// mu guards the replicated state. It is never held while calling
	// memberlist or sending.
	mu      sync.Mutex
	ringID  string
	st      *state
	dirty   bool
	loaded  bool
	handler string // registered kernel name, "" if none
	epoch   uint64 // incremented by every (de)activation: stale deferred work checks it
	gen     uint64 // incremented by every state change (touchLocked)
	// encGen, encClock and encEntries cache the msgpack encoding of the
	// state at generation encGen, shared by every message sent until the
	// state changes.
	encGen               uint64
	encClock, encEntries []byte
	// checkedGen is the generation whose published ring poll last
	// checked against the entries.
	checkedGen uint64
	// sum caches codec.ClockSum of the clock at generation sumGen.
	sum, sumGen uint64
	sumOK       bool
	// fingers caches fingersLocked's result for generation fingerGen.
	fingers   []notp.Node
	fingerGen uint64
	// pendingSelf is a self-removal waiting for opMu (see trySelfRemoved).
	pendingSelf *pendingRemoval
	// selfFloor is the highest version of this node's own entry seen
	// before its last reset (its leave or removal); see message.Floor.
	selfFloor uint64
	// selfSync: this node has not advanced its own clock count since New,
	// Load or its last reset, so a peer may know a higher one (the state
	// was lost, or the flush file is older than the last change) and it is
	// adopted. Afterwards a remote clock ahead of our own count is a forgery
	// and rejected (checkSelfCountLocked).
	selfSync bool

	healthMu  sync.Mutex
	health    map[string]Health
	deadSince map[string]time.Time
	// reconn holds the reconnect loop's record of each member it retries.
	reconn map[string]*reconnectState

	// fs is the file system of persistence (a seam for fault injection).
	fs fileSystem
	// flushFails and flushWarned rate-limit flush warnings (loop only).
	flushFails  int
	flushWarned time.Time

	inbox   chan kernel.Message
	control chan func()
	stopCh  chan struct{}
	wg      sync.WaitGroup
	joining atomic.Bool

	bus   event.Bus[Event]
	stats counters

	// testSend, when set (tests only, before Start), replaces kernel casts.
	testSend func(to notp.Node, msg []byte)
}

// Validate reports the first field of c that is out of range, as an error
// wrapping ErrInvalidConfig (and ErrInvalidWeight for RFactor).
func (c *Config) Validate() error {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"Interval", c.Interval}, {"FlushInterval", c.FlushInterval},
		{"AutoRemoveDeadAfter", c.AutoRemoveDeadAfter}, {"TombstoneTTL", c.TombstoneTTL},
		{"CallTimeout", c.CallTimeout},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidConfig, f.name, f.v)
		}
	}
	if c.RFactor > MaxWeight {
		return fmt.Errorf("%w: %w: RFactor %d above %d", ErrInvalidConfig, ErrInvalidWeight, c.RFactor, MaxWeight)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"RFactor", c.RFactor}, {"PFactor", c.PFactor}, {"MaxTokens", c.MaxTokens}, {"MaxLinks", c.MaxLinks}} {
		if f.v < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrInvalidConfig, f.name, f.v)
		}
	}
	_, err := c.Reconnect.withDefaults()
	return err
}

// New validates and copies cfg and returns a Ring of this node's kernel k
// holding a ring of its own (this node only, not in a ring). It does not
// touch the network. k must be started before Ring.Start: ring messages
// travel over it and memberlist's streams share its port (memberlist
// packets use UDP on the same port number). memberlist's SecretKey is
// derived from k's cookie ([kernel.Kernel.DeriveKey]); a kernel without a
// cookie (insecure mode) means no gossip encryption.
func New(k *kernel.Kernel, cfg Config) (*Ring, error) {
	if k == nil {
		return nil, ErrNilKernel
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Validate refused negative values, so zero is the only unset one.
	cfg.RFactor = cmp.Or(cfg.RFactor, chash.DefaultRFactor)
	cfg.PFactor = cmp.Or(cfg.PFactor, chash.DefaultPFactor)
	cfg.MaxLinks = cmp.Or(cfg.MaxLinks, DefaultMaxLinks)
	cfg.MaxTokens = cmp.Or(cfg.MaxTokens, DefaultMaxTokens)
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.FlushInterval = cmp.Or(cfg.FlushInterval, DefaultFlushInterval)
	cfg.CallTimeout = cmp.Or(cfg.CallTimeout, DefaultCallTimeout)
	cfg.TombstoneTTL = cmp.Or(cfg.TombstoneTTL, DefaultTombstoneTTL)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	rc, err := cfg.Reconnect.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Reconnect = rc
	if cfg.Memberlist != nil {
		c := *cfg.Memberlist
		cfg.Memberlist = &c
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &Ring{
		cfg:       cfg,
		k:         k,
		log:       log,
		now:       cfg.Now,
		self:      k.Self().ID,
		fs:        osFS{},
		health:    make(map[string]Health),
		deadSince: make(map[string]time.Time),
		reconn:    make(map[string]*reconnectState),
		inbox:     make(chan kernel.Message, 1024),
		control:   make(chan func(), 16),
		stopCh:    make(chan struct{}),
	}
	r.st = newState(r.now)
	r.resetLocked(r.k.Self())
	return r, nil
}

// resetLocked makes the state a ring of this node alone. The clock keeps
// this node's own count (so its later changes are newer than any it made
// before) and drops every other actor.
func (r *Ring) resetLocked(self notp.Node) {
	old := r.st
	if e, ok := old.entries[r.self]; ok {
		r.selfFloor = max(r.selfFloor, e.Version)
	}
	st := newState(r.now)
	own := old.clock.Count(r.self)
	st.clock.Update(r.self, own)
	// Version 0: a placeholder that loses to any write about this node,
	// so an admin's Insert (version 1 or more) of a node with a ring of
	// its own decides its weight.
	st.entries[r.self] = codec.Entry{Node: self, Weight: r.cfg.RFactor, Writer: r.self, Time: r.now().UnixMicro()}
	r.st = st
	r.selfSync = true
	r.touchLocked()
	r.publishRingLocked()
}

// enforceLocked applies the state caps after a change from olds (see
// state.enforce), counting and reporting what it evicted and refused.
func (r *Ring) enforceLocked(olds map[string]codec.Entry) []notp.Node {
	refused, evicted := r.st.enforce(olds, r.cfg.MaxTokens)
	for range evicted {
		r.stats.evicted.add()
	}
	if len(refused) == 0 {
		return nil
	}
	for range refused {
		r.stats.refused.add()
	}
	slices.SortFunc(refused, func(a, b notp.Node) int { return compareStrings(a.ID, b.ID) })
	r.log.Warn("ring full: entries refused", "ring", r.ringID, "refused", len(refused),
		"max_nodes", MaxNodes, "max_tokens", r.cfg.MaxTokens)
	r.emit(EventRefused, r.ringID, refused)
	return refused
}

// touchLocked records a state change: flush pending, encoding stale.
func (r *Ring) touchLocked() {
	r.dirty = true
	r.gen++
}

// repairRingLocked checks the published ring against the live entries
// and, if they differ, publishes a ring rebuilt from the entries and
// returns the difference (for events). Checked once per generation.
func (r *Ring) repairRingLocked() (ringDiff, bool) {
	if r.checkedGen == r.gen {
		return ringDiff{}, false
	}
	r.checkedGen = r.gen
	pub := r.ring.Load()
	weights := pub.Weights()
	var d ringDiff
	for id, e := range r.st.entries {
		if e.Removed {
			continue
		}
		w, ok := weights[id]
		n, _ := pub.Get(id)
		switch {
		case !ok:
			d.added = append(d.added, e.Node)
		case w != e.Weight || n != e.Node:
			d.updated = append(d.updated, e.Node)
		}
	}
	for _, n := range pub.Nodes() {
		if !r.st.live(n.ID) {
			d.removed = append(d.removed, n)
		}
	}
	if d.empty() {
		return d, false
	}
	r.stats.repairs.add()
	r.log.Error("gossip: published ring out of step with the entries; rebuilt it",
		"added", len(d.added), "removed", len(d.removed), "updated", len(d.updated))
	r.publishRingLocked()
	return d, true
}

func (r *Ring) publishRingLocked() {
	r.ring.Store(r.st.buildRing(r.cfg.RFactor, r.cfg.PFactor))
}

// publishDiffLocked publishes the ring changed by d: a copy-on-write clone
// of the current ring with d applied in one chash.Ring.Apply, so a change
// costs O(changed tokens × log tokens) plus one snapshot of the ring,
// however many nodes it touches (one Insert per node would publish a
// snapshot per node: quadratic for a large MInsert or a join).
func (r *Ring) publishDiffLocked(d ringDiff) {
	remove := make([]string, len(d.removed))
	for i, n := range d.removed {
		remove[i] = n.ID
	}
	set := make([]chash.Weighted, 0, len(d.added)+len(d.updated))
	for _, n := range slices.Concat(d.added, d.updated) {
		set = append(set, chash.Weighted{Node: n, Weight: r.st.entries[n.ID].Weight})
	}
	ring := r.ring.Load().Clone()
	ring.Apply(remove, set)
	r.ring.Store(ring)
}

// RingID returns the id of the ring this node belongs to, "" when none.
func (r *Ring) RingID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ringID
}

// View returns a read-only snapshot of the current hash ring. It stays
// valid (and unchanged) after later ring changes; call View again to see
// them.
func (r *Ring) View() View { return View{r: r.ring.Load()} }

// Clock returns a copy of the state's vector clock.
func (r *Ring) Clock() *vclock.Clock {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.clock.Clone()
}

// RFactor returns the default weight (tokens) of a node.
func (r *Ring) RFactor() int { return r.cfg.RFactor }

// PFactor returns the default neighbour count.
func (r *Ring) PFactor() int { return r.cfg.PFactor }

// Self returns this node as the ring knows it.
func (r *Ring) Self() notp.Node { return r.k.Self() }

// PreferenceList returns the n nodes that hold key in the current ring:
// its owner then the next distinct nodes clockwise from key's position
// (see [View.PreferenceList]). n ≤ 0 means PFactor+1. An empty ring gives
// nil.
func (r *Ring) PreferenceList(key []byte, n int) []notp.Node {
	return r.View().PreferenceList(key, n)
}

// Neighbourhood returns the owner of key followed by up to n-1 of the
// owner's neighbours ([View.Neighbours]: the nodes that take over the
// owner's keys), notp's find. n ≤ 0 means PFactor+1. It differs from
// [Ring.PreferenceList] beyond the owner: the neighbours are walked from
// the owner's first token, not from key. An empty ring gives nil.
func (r *Ring) Neighbourhood(key []byte, n int) []notp.Node {
	if n <= 0 {
		n = r.cfg.PFactor + 1
	}
	v := r.View()
	owner, ok := v.Owner(key)
	if !ok {
		return nil
	}
	return append([]notp.Node{owner}, v.ring().Next(owner.ID, n-1)...)
}

// Members returns the ring's nodes in ring order with their weights and
// memberlist health (this node is always alive).
func (r *Ring) Members() []Member {
	ring := r.ring.Load()
	w := ring.Weights()
	nodes := ring.Nodes()
	out := make([]Member, 0, len(nodes))
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	for _, n := range nodes {
		h := r.health[n.ID]
		if n.ID == r.self {
			h = HealthAlive
		}
		out = append(out, Member{Node: n, Weight: w[n.ID], Health: h})
	}
	return out
}

// Health returns memberlist's view of the node with this id.
func (r *Ring) Health(id string) Health {
	if id == r.self {
		return HealthAlive
	}
	r.healthMu.Lock()
	defer r.healthMu.Unlock()
	return r.health[id]
}

// Subscribe returns a channel of events with buf slots (≤ 0: 64, the
// module's default; at most 65536) and a cancel func that closes it.
// Publishing never blocks: when the channel is full the event is dropped
// and counted in Stats.EventsDropped.
func (r *Ring) Subscribe(buf int) (events <-chan Event, cancel func()) {
	return r.bus.Subscribe(buf)
}

func (r *Ring) emit(kind EventKind, ringID string, nodes []notp.Node) {
	if len(nodes) == 0 && kind != EventConflict {
		return
	}
	r.bus.Publish(Event{Kind: kind, Nodes: nodes, RingID: ringID, Time: r.now()})
}

// Stats returns a snapshot of the counters.
func (r *Ring) Stats() Stats {
	s := &r.stats
	return Stats{
		MessagesSent: s.sent.load(), SendErrors: s.sendErr.load(),
		MessagesReceived: s.recv.load(), MessagesRejected: s.rejected.load(),
		InboxDrops: s.inboxDrops.load(), Merges: s.merges.load(),
		Conflicts: s.conflicts.load(), PushPulls: s.pushPulls.load(),
		EventsDropped: r.bus.Dropped(), Flushes: s.flushes.load(),
		FlushErrors: s.flushErr.load(), TombstonesGCed: s.gced.load(),
		AutoRemoved: s.autoRemoved.load(), RingRepairs: s.repairs.load(),
		EntriesRefused: s.refused.load(), TombstonesEvicted: s.evicted.load(),
		LinksDeferred: s.linksDeferred.load(), Panics: s.panics.load(),
		ReconnectAttempts: s.reconnAttempts.load(), Reconnects: s.reconnected.load(),
	}
}

// Checksum returns the checksum of this node's ring state that the
// anti-entropy poll sends a neighbour (see Config.Interval): a hash of the
// state's version clock, so members whose states merged the same changes
// report the same checksum. Equal checksums on every member of a ring mean
// its gossip has converged.
func (r *Ring) Checksum() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sumLocked()
}

// withTimeout applies CallTimeout when ctx has no deadline.
func (r *Ring) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, r.cfg.CallTimeout)
}
