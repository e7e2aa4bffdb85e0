package conflux

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/conflux/internal/logentry"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/event"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/vmihailenco/msgpack/v5"
)

// Store is one node's replica of a group's state. All methods are safe
// for concurrent use.
type Store[S, A any] struct {
	cfg  Config[S, A]
	log  *slog.Logger
	ring ringView
	fsm  *fsm[S, A]

	mu      sync.Mutex // lifecycle
	started bool
	stopped bool
	raft    *raft.Raft
	live    atomic.Pointer[raft.Raft] // raft while started and not stopped
	trans   *raft.NetworkTransport
	layer   *streamLayer
	stores  *stores
	srv     *genserver.Server
	obs     *raft.Observer
	obsCh   chan raft.Observation
	kickCh  chan struct{} // wakes the reconcile loop

	propMu      sync.Mutex                  // held while running proposals and barriers; released with unlockProp (see drain)
	queued      atomic.Pointer[proposal[A]] // proposals waiting for propMu, newest first
	batch       []*proposal[A]              // runQueued's, reused under propMu
	ready       []staged[A]                 // runBatch's, reused under propMu
	drainKick   chan struct{}               // wakes drainerLoop
	propOnce    sync.Once                   // starts waiterLoop and drainerLoop
	proposals   sync.Pool                   // *proposal[A] for reuse (see recycle)
	waitCh      chan appended[A]
	waiterDone  chan struct{}
	proposal    uint64 // last proposal number
	barrierTerm atomic.Uint64

	bus        event.Bus[Event] // the store's events (SubscribeEvents)
	eventsOnce sync.Once
	events     <-chan Event  // Events' subscription
	dropped    atomic.Uint64 // events lost on full subscriber channels
	overloaded atomic.Uint64
	pending    atomic.Int64 // Performs and Reads waiting on this node
	removed    sync.Map     // node ID -> struct{}: removed from the ring
	met        storeMetrics // counters for package metrics (metrics.go)

	bootMu  sync.Mutex
	bootSet []string // the voter set this node would bootstrap

	done    chan struct{}
	tmu     sync.Mutex // guards closing and wg.Add against Stop's Wait
	closing bool
	wg      sync.WaitGroup
}

// New makes a store for the group cfg.Name on node; Start runs it. node
// must be started before Start.
func New[S, A any](node *cluster.Node, cfg Config[S, A]) (*Store[S, A], error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Methods = cloneMap(cfg.Methods)
	cfg.Errors = append([]error(nil), cfg.Errors...)
	s := &Store[S, A]{
		cfg: cfg, log: cfg.Logger.With("group", cfg.Name), ring: ringView{node},
		done: make(chan struct{}), kickCh: make(chan struct{}, 1), drainKick: make(chan struct{}, 1),
		waitCh: make(chan appended[A], cfg.MaxPending), waiterDone: make(chan struct{}),
	}
	s.fsm = newFSM(s)
	var b [8]byte
	rand.Read(b[:])
	s.proposal = binary.BigEndian.Uint64(b[:]) >> 1 // distinct per incarnation
	return s, nil
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ServerName returns the name of the genserver through which the group's
// nodes forward requests to the leader: "conflux.<name>".
func ServerName(name string) string { return "conflux." + name }

// Start opens the storage, starts Raft on the node's port and the
// group's genserver, and begins following the ring (bootstrapping when
// Config.BootstrapExpect says so). It fails with ErrAlreadyStarted when
// called twice and ErrClosed after Stop. A Start that fails part-way
// stops what it had started and returns its error joined with any error
// of that teardown.
func (s *Store[S, A]) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return ErrClosed
	case s.started:
		return ErrAlreadyStarted
	}
	if err := s.start(ctx); err != nil {
		return errors.Join(err, s.teardown(context.Background()))
	}
	if err := s.registerAdmin(); err != nil {
		return errors.Join(err, s.teardown(context.Background()))
	}
	s.started = true
	s.live.Store(s.raft)
	s.registerMetrics()
	s.wg.Add(2)
	go s.observe()
	go s.reconcileLoop()
	return nil
}

func (s *Store[S, A]) start(ctx context.Context) error {
	k := s.ring.kernel()
	self := s.ring.self()
	hl := newHCLog(s.log)
	st, err := s.cfg.Storage.open(s.cfg.Name, hclogWriter{s.log})
	if err != nil {
		return err
	}
	s.stores = st
	if s.layer, err = joinMux(k, s.cfg.Name); err != nil {
		return err
	}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: s.layer, MaxPool: 3, Timeout: 10 * time.Second, Logger: hl,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(self.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = s.cfg.HeartbeatTimeout, s.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = s.cfg.LeaderLeaseTimeout, s.cfg.CommitTimeout
	rc.SnapshotThreshold, rc.SnapshotInterval = s.cfg.SnapshotThreshold, s.cfg.SnapshotInterval
	rc.TrailingLogs = s.cfg.TrailingLogs
	// A buffered apply channel: proposals enqueue in order under one lock
	// and the leader still appends them in batches (see propose).
	rc.BatchApplyCh = true
	rc.Logger = hl
	rc.ShutdownOnRemove = false // a removed node may be added again later
	if s.raft, err = raft.NewRaft(rc, s.fsm, st.logs, st.stable, st.snaps, s.trans); err != nil {
		return fmt.Errorf("conflux: start raft: %w", err)
	}
	ch := make(chan raft.Observation, 64)
	s.obs = raft.NewObserver(ch, false, nil)
	s.raft.RegisterObserver(s.obs)
	s.obsCh = ch
	if s.srv, err = genserver.New(k, genserver.Config{Name: ServerName(s.cfg.Name), Logger: s.log}); err != nil {
		return fmt.Errorf("conflux: %w", err)
	}
	s.handle()
	if err := s.srv.Start(ctx); err != nil {
		return fmt.Errorf("conflux: start server %s: %w", ServerName(s.cfg.Name), err)
	}
	return nil
}

// Stop leaves the group's work: it stops the genserver (which answers the
// requests forwarded to it that are already queued, for at most 5 s or
// until ctx ends; the rest are answered with genserver.CodeStopped), Raft
// (pending Performs end with ErrUnknownOutcome or ErrClosed), the
// transport and the storage, and waits for the store's goroutines. The
// node stays a member of the group's configuration (it is removed when it
// leaves the ring). It returns the parts' errors joined, ctx's among them
// when ctx ended before the genserver's queue was answered (or
// context.DeadlineExceeded when the 5 s cap ran out first); the store is
// stopped either way. Idempotent: a second Stop, or Stop before Start,
// returns nil.
func (s *Store[S, A]) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	s.unregisterAdmin()
	s.live.Store(nil)
	s.unregisterMetrics()
	close(s.done)
	err := s.teardown(ctx)
	s.tmu.Lock()
	s.closing = true
	s.tmu.Unlock()
	s.wg.Wait()
	return err
}

// Close stops the store at once: Stop with an already cancelled context,
// so the requests queued at its genserver are answered with
// genserver.CodeStopped instead of handled; Raft, the transport and the
// storage are still shut down and the store's goroutines waited for. It
// returns Stop's errors other than that cancellation. Idempotent, like
// Stop.
func (s *Store[S, A]) Close() error { return lifecycle.StopNow(s.Stop) }

// teardown stops what start started, in reverse order. It returns one
// error per failed part, joined (not wrapped in one), so Close can drop
// the cancellation it caused and keep the rest.
func (s *Store[S, A]) teardown(ctx context.Context) error {
	var errs []error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.srv.Stop(ctx); err != nil && !errors.Is(err, notp.ErrNotStarted) {
			errs = append(errs, fmt.Errorf("conflux: stop: server: %w", err))
		}
		cancel()
	}
	if s.raft != nil {
		// Raft's apply channel is buffered (BatchApplyCh), and an entry
		// still queued in it when Raft shuts down is never answered, so
		// its waiter would wait forever. Taking propMu lets the proposals
		// and barriers being enqueued finish; later ones see the store
		// closed (they check under propMu). A barrier then flushes the
		// queue: once it is answered, Raft's loop has taken every entry
		// before it, and its shutdown answers those.
		s.propMu.Lock()
		s.unlockProp()
		s.raft.Barrier(0).Error()
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("conflux: stop: raft: %w", err))
		}
		s.raft.DeregisterObserver(s.obs)
		s.emit(Event{Kind: EventShutdown})
	}
	if s.trans != nil {
		s.trans.Close()
	}
	if s.layer != nil {
		s.layer.Close() // idempotent; the transport may not own it yet
	}
	if s.stores != nil {
		if err := s.stores.close(); err != nil {
			errs = append(errs, fmt.Errorf("conflux: stop: storage: %w", err))
		}
	}
	return errors.Join(errs...)
}

// running returns Raft, or ErrClosed when the store is not running. It
// takes no lock, so goroutines that Stop waits for can call it.
func (s *Store[S, A]) running() (*raft.Raft, error) {
	select {
	case <-s.done:
		return nil, ErrClosed
	default:
	}
	if r := s.live.Load(); r != nil {
		return r, nil
	}
	return nil, ErrClosed
}

// State returns this node's committed state: every action applied here,
// which may lag the leader. It never blocks on the network.
func (s *Store[S, A]) State() S {
	st, _ := s.fsm.committed()
	return st
}

// AppliedIndex returns the log index of the last entry applied here.
func (s *Store[S, A]) AppliedIndex() uint64 {
	_, i := s.fsm.committed()
	return i
}

// ProvisionalState returns the committed state plus the actions not yet
// committed: on the leader its in-flight actions (what Methods see); on a
// follower the entries it has stored beyond its applied index (at most
// maxProvisional of them).
func (s *Store[S, A]) ProvisionalState() S {
	r, err := s.running()
	if err == nil && r.State() == raft.Leader {
		s.fsm.mu.Lock()
		defer s.fsm.mu.Unlock()
		return s.fsm.prov
	}
	st, applied := s.fsm.committed()
	if err != nil {
		return st
	}
	last, lerr := s.stores.logs.LastIndex()
	if lerr != nil {
		return st
	}
	for i := applied + 1; i <= last && i <= applied+maxProvisional; i++ {
		var l raft.Log
		if s.stores.logs.GetLog(i, &l) != nil || l.Type != raft.LogCommand {
			continue
		}
		var e entry
		var a A
		if logentry.Decode(l.Data, &e) != nil || msgpack.Unmarshal(e.A, &a) != nil {
			continue
		}
		st = s.cfg.Reduce(st, a)
	}
	return st
}

// maxProvisional bounds the entries a follower's ProvisionalState reduces.
const maxProvisional = 1024

// Subscribe calls fn with the state after each action this node applies,
// the action and its log index, in log order. fn runs on the apply
// goroutine: it must return quickly and must not call the store's
// blocking methods. A snapshot restore replaces the state without
// calling fn (the store's events report EventRestored).
func (s *Store[S, A]) Subscribe(fn func(state S, action A, index uint64)) (unsubscribe func()) {
	return s.fsm.subscribe(fn)
}

// SubscribeEvents returns a channel of the store's events with room for
// buf events (≤ 0: 64, the module's default; at most 65536) and a
// function that unsubscribes and closes the channel. Every subscription
// receives every event published after SubscribeEvents returns; subscribe
// before Start to see the start's own (such as EventRestored for a
// snapshot on disk). The store never blocks on a subscriber (events come
// from Raft's observer and apply goroutines): an event that finds the
// channel full is lost and counted in Stats.EventsDropped.
func (s *Store[S, A]) SubscribeEvents(buf int) (<-chan Event, func()) {
	return s.bus.Subscribe(buf)
}

// Events returns the store's own event channel: one subscription with room
// for 256 events, made at the first call and shared by every caller of
// Events, so that two readers of it split the events between them; a
// consumer that needs every event, or to stop listening, takes a
// subscription of its own with SubscribeEvents. Like every subscription
// it never holds up the store: an event that finds it full is lost and
// counted in Stats.EventsDropped.
func (s *Store[S, A]) Events() <-chan Event {
	s.eventsOnce.Do(func() { s.events, _ = s.bus.Subscribe(256) })
	return s.events
}

// Leader returns the group's leader as this node knows it.
func (s *Store[S, A]) Leader() (notp.Node, bool) {
	r, err := s.running()
	if err != nil {
		return notp.Node{}, false
	}
	addr, id := r.LeaderWithID()
	if id == "" {
		return notp.Node{}, false
	}
	return nodeAt(string(id), string(addr))
}

// nodeAt builds the node of a Raft server (ID, host:port).
func nodeAt(id, addr string) (notp.Node, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return notp.Node{}, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return notp.Node{}, false
	}
	return notp.Node{ID: id, Host: host, Port: p}, true
}

// WaitApplied waits until this node has applied the log entry index
// (entries that carry no action, such as a new leader's no-op, count as
// applied once Raft has processed them).
func (s *Store[S, A]) WaitApplied(ctx context.Context, index uint64) error {
	var tick *time.Ticker
	for {
		if _, applied := s.fsm.committed(); applied >= index {
			return nil // the common case: no channel needed
		}
		ch, applied := s.fsm.waitCh()
		if applied >= index || s.appliedThrough(index, applied) {
			if tick != nil {
				tick.Stop()
			}
			return nil
		}
		if tick == nil {
			// Raft applies entries without actions without telling the
			// FSM, so no apply may wake this wait: poll as well.
			tick = time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("conflux: wait for index %d (applied %d): %w", index, applied, ctx.Err())
		case <-s.done:
			return ErrClosed
		}
	}
}

// maxScan bounds the log entries appliedThrough inspects.
const maxScan = 4096

// appliedThrough reports whether Raft has applied index and none of the
// entries after the FSM's applied index up to it is an action (so the
// FSM has nothing left to apply there).
func (s *Store[S, A]) appliedThrough(index, applied uint64) bool {
	r, err := s.running()
	if err != nil || r.AppliedIndex() < index || index-applied > maxScan {
		return false
	}
	for i := applied + 1; i <= index; i++ {
		var l raft.Log
		if s.stores.logs.GetLog(i, &l) != nil || l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// TransferLeadership hands leadership to the node with ID to ("" = the
// most up-to-date voter). It must run on the leader (else
// *NotLeaderError) and returns when the transfer ends.
func (s *Store[S, A]) TransferLeadership(ctx context.Context, to string) error {
	r, err := s.running()
	if err != nil {
		return err
	}
	if r.State() != raft.Leader {
		l, _ := s.Leader()
		return &NotLeaderError{Leader: l}
	}
	var f raft.Future
	if to == "" {
		f = r.LeadershipTransfer()
	} else {
		addr, ok := s.serverAddr(to)
		if !ok {
			return fmt.Errorf("conflux: transfer leadership: %q is not a voter of the group", to)
		}
		f = r.LeadershipTransferToServer(raft.ServerID(to), addr)
	}
	if err := s.await(ctx, f); err != nil {
		return fmt.Errorf("conflux: transfer leadership: %w", err)
	}
	return nil
}

// serverAddr returns the address of voter id in the configuration.
func (s *Store[S, A]) serverAddr(id string) (raft.ServerAddress, bool) {
	cf := s.raft.GetConfiguration()
	if cf.Error() != nil {
		return "", false
	}
	for _, sv := range cf.Configuration().Servers {
		if string(sv.ID) == id && sv.Suffrage == raft.Voter {
			return sv.Address, true
		}
	}
	return "", false
}

// await waits for f within ctx. Raft resolves every future by its
// Shutdown, so the waiting goroutine ends by Stop at the latest.
func (s *Store[S, A]) await(ctx context.Context, f raft.Future) error {
	ch := make(chan error, 1)
	if !s.spawn(func() { ch <- f.Error() }) {
		return ErrClosed
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spawn runs fn on a goroutine Stop waits for; false once Stop began.
func (s *Store[S, A]) spawn(fn func()) bool {
	s.tmu.Lock()
	defer s.tmu.Unlock()
	if s.closing {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// observe turns Raft's observations into Events.
func (s *Store[S, A]) observe() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case o := <-s.obsCh:
			switch d := o.Data.(type) {
			case raft.RaftState:
				var k EventKind
				switch d {
				case raft.Leader:
					k = EventLeader
				case raft.Follower:
					k = EventFollower
				case raft.Candidate:
					k = EventCandidate
				default:
					continue
				}
				s.emit(Event{Kind: k, Term: s.raft.CurrentTerm()})
				if k == EventLeader {
					s.kick()
				}
			case raft.PeerObservation:
				if d.Removed {
					s.emit(Event{Kind: EventLeft, Node: string(d.Peer.ID)})
				} else {
					s.emit(Event{Kind: EventJoined, Node: string(d.Peer.ID), Voter: d.Peer.Suffrage == raft.Voter})
				}
			}
		}
	}
}

// withTimeout applies PerformTimeout to a ctx without deadline.
func (s *Store[S, A]) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, s.cfg.PerformTimeout)
}

// noCancel is withTimeout's cancel when it adds no timeout. (A function
// literal there would be allocated on every call: in a generic method it
// captures the method's type dictionary.)
func noCancel() {}

// hclog adapters: Raft logs through hclog; its lines go to slog.
func newHCLog(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: hclogWriter{l}, DisableTime: true})
}

type hclogWriter struct{ l *slog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	for len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	if strings.Contains(msg, "[ERROR]") {
		w.l.Warn("raft", "line", msg)
	} else {
		w.l.Info("raft", "line", msg)
	}
	return len(p), nil
}

// Stats are a store's counters: what its budgets refused.
type Stats struct {
	Applied       uint64 // log index of the last entry applied here
	Pending       int64  // Performs and Reads waiting on this node now
	Overloaded    uint64 // requests refused with ErrOverloaded (Config.MaxPending)
	EventsDropped uint64 // events lost on full subscriber channels (Subscribe)
	Sessions      int    // clients in the request-ID table (Config.MaxSessions)
}

// Stats returns the store's counters.
func (s *Store[S, A]) Stats() Stats {
	s.fsm.mu.Lock()
	applied, sessions := s.fsm.applied, len(s.fsm.sessions)
	s.fsm.mu.Unlock()
	return Stats{
		Applied: applied, Pending: s.pending.Load(), Overloaded: s.overloaded.Load(),
		EventsDropped: s.dropped.Load(), Sessions: sessions,
	}
}
