package dsm

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dsm/internal/wire"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
)

// Info is a semaphore's limit and its current number of holders.
type Info struct {
	N, Active int
}

// handoffTimeout bounds one handoff call; inflightMax is how long a
// handoff may stay unanswered before it is sent again.
const (
	handoffTimeout = 5 * time.Second
	inflightMax    = 4 * handoffTimeout
)

// DSM is one node's distributed semaphore manager: the owner of the
// semaphores whose IDs the ring gives this node (a genserver named
// Config.Name), and the client that reaches the owner of any ID. All
// methods are safe for concurrent use.
type DSM struct {
	cfg    Config
	base   *replicated.Server // lifecycle, genserver, table, loops, metrics
	srv    *genserver.Server
	ring   ringView
	jitter *replicated.Jitter

	stats  counters
	gauges gauges
	own    *owner // owned by the actor goroutine while started

	// versions counts each semaphore's changes (actor-owned), so a
	// handoff acknowledged after a later change does not drop it.
	versions map[string]uint64
	// inflight holds the IDs whose handoff is queued or being sent
	// (actor-owned): they are not sent again until it ends, since a second
	// copy landing after holders closed on the new owner would bring them
	// back. An entry older than inflightMax is stale (its end was lost).
	inflight map[string]time.Time
	// changedAt is when the ring last changed (UnixNano), for CodeMoving.
	changedAt atomic.Int64
	// work carries handoffs from the actor to the handoff goroutine.
	work chan []handoffJob
}

type handoffJob struct {
	to      notp.Node
	h       handoff
	version uint64
}

// New returns a stopped DSM on node's kernel and ring. It validates and
// copies cfg.
func New(node *cluster.Node, cfg Config) (*DSM, error) {
	if err := replicated.PrepareConfig(node == nil, ErrInvalidConfig, cfg.setDefaults, cfg.Validate); err != nil {
		return nil, err
	}
	s := &DSM{cfg: cfg, ring: newClusterRing(node), versions: map[string]uint64{}, inflight: map[string]time.Time{},
		work: make(chan []handoffJob, 1), jitter: replicated.NewJitter()}
	base, err := replicated.New(node.Kernel(), replicated.Config{Prefix: "dsm", Name: cfg.Name, Dir: cfg.Dir, Logger: cfg.Logger,
		Errors: lifecycle, Metrics: node.Metrics(), Source: s.collect})
	if err != nil {
		return nil, err
	}
	s.base, s.srv = base, base.Genserver()
	s.handle()
	return s, nil
}

// Start opens the table (Config.Dir), restores the semaphores with each
// holder's remaining time, registers the DSM on the node's kernel and
// starts watching the ring for ownership changes.
func (s *DSM) Start(ctx context.Context) error {
	sweep := replicated.Every(s.cfg.SweepInterval, func() { s.self(wire.Sweep) })
	rebalance := replicated.Every(s.cfg.HandoffInterval, func() { s.self(wire.Rebalance) })
	// Until the first hand-off checks have run, a semaphore this node owns
	// but does not have may still be on its way from the node that owned
	// it on an earlier ring (this node may have just joined, or restarted
	// while the ring changed).
	s.changedAt.Store(s.cfg.Now().UnixNano())
	return s.base.Start(ctx, s.load, sweep, rebalance, s.watch, s.handoffs)
}

// load restores the owner from its table; Start calls it before the
// genserver runs.
func (s *DSM) load(ctx context.Context, st *table.Table) error {
	own := newOwner(st, &s.cfg)
	if err := own.load(ctx); err != nil {
		return err
	}
	s.own = own
	own.gauges = &s.gauges
	own.publish()
	return nil
}

// Stop stops watching the ring, unregisters the DSM, lets the owner
// answer the requests already queued until ctx ends (the rest are then
// answered with genserver.CodeStopped and Stop returns an error wrapping
// ctx's) and closes its table. The semaphores stay on disk for the next
// DSM on the same Dir (notp's Stop cleared them); Stop does not hand them
// off. A stopped DSM cannot be started again; a second Stop returns nil,
// and Stop before Start ErrNotStarted. For an immediate stop, see
// [DSM.StopNow].
func (s *DSM) Stop(ctx context.Context) error { return s.base.Stop(ctx) }

// StopNow stops the DSM at once: Stop with an already cancelled context,
// so requests still queued at the owner are answered with
// genserver.CodeStopped instead of handled. It returns Stop's errors other
// than that cancellation (a table that did not close cleanly, say):
// ErrNotStarted before Start, nil after a Stop or StopNow. The module's
// other long-lived types call this Close; a DSM's Close(ctx, id, holder)
// is the semaphore operation.
func (s *DSM) StopNow() error { return s.base.Close() }

func (s *DSM) running() error { return s.base.Running() }

// watch notes each ring change and looks for semaphores to hand off,
// until ctx ends (at Stop).
func (s *DSM) watch(ctx context.Context) {
	s.ring.watch(ctx.Done(), func() {
		s.ring.moved()
		s.changedAt.Store(s.cfg.Now().UnixNano())
		s.self(wire.Rebalance)
	})
}

// self casts a housekeeping event to this node's own actor.
func (s *DSM) self(ev string) {
	_ = s.srv.Cast(genserver.Target{Name: s.cfg.Name}, ev, encode(request{}))
}

// handoffs sends each batch of semaphores the actor found it no longer
// owns to their owners, and tells the actor which were accepted, until
// ctx ends (at Stop, which cancels the calls in flight).
func (s *DSM) handoffs(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case jobs := <-s.work:
			for _, j := range jobs {
				_ = s.ring.kernel().Connect(j.to) // a node that left the ring may have dropped its links
				cctx, ccancel := context.WithTimeout(ctx, handoffTimeout)
				_, err := s.srv.Call(cctx, genserver.Target{Name: s.cfg.Name, Node: j.to}, wire.Handoff, encode(j.h))
				ccancel()
				if err != nil {
					s.stats.failed.Add(1)
					s.cfg.Logger.Debug("dsm: handoff failed, retrying later", "id", j.h.ID, "to", j.to.ID, "err", err)
				} else {
					s.stats.sent.Add(1)
				}
				_ = s.srv.Cast(genserver.Target{Name: s.cfg.Name}, wire.Handed, encode(handed{ID: j.h.ID, Version: j.version, Failed: err != nil}))
			}
		}
	}
}

func badRequest(ev string, err error) error {
	return &kernel.RemoteError{Code: CodeBadRequest, Message: fmt.Sprintf("dsm: %s: %v", ev, err)}
}

// handle registers the owner's events on the genserver.
func (s *DSM) handle() {
	ops := map[string]func(r request) (reply, error){
		wire.Create:  func(r request) (reply, error) { return s.own.create(r.ID, r.N) },
		wire.Read:    func(r request) (reply, error) { return s.own.read(r.ID) },
		wire.Destroy: func(r request) (reply, error) { return s.own.destroy(r.ID) },
		wire.Post:    func(r request) (reply, error) { return s.own.post(r.ID, r.Holder, r.TTL()) },
		wire.Close:   func(r request) (reply, error) { return s.own.close(r.ID, r.Holder) },
	}
	for ev, op := range ops {
		s.srv.Handle(ev, func(_ context.Context, req genserver.Request) ([]byte, error) {
			r, err := wire.DecodeRequest(ev, req.Data, s.cfg.MaxSize)
			if err != nil {
				return nil, badRequest(ev, err)
			}
			if err := s.owns(r.ID); err != nil {
				return nil, err
			}
			rep, err := op(r)
			s.own.publish()
			if err != nil {
				return nil, err
			}
			if ev != wire.Read {
				s.versions[r.ID]++
			}
			return encode(rep), nil
		})
	}
	s.srv.Handle(wire.Handoff, func(_ context.Context, req genserver.Request) ([]byte, error) {
		h, err := wire.DecodeHandoff(req.Data, s.cfg.MaxSize)
		if err != nil {
			return nil, badRequest(wire.Handoff, err)
		}
		rep, err := s.own.install(h)
		s.own.publish()
		if err != nil {
			return nil, err
		}
		s.stats.received.Add(1)
		s.versions[h.ID]++
		return encode(rep), nil
	})
	s.srv.Handle(wire.Handed, func(_ context.Context, req genserver.Request) ([]byte, error) {
		if req.From.Node.ID != s.ring.self().ID {
			return nil, badRequest(wire.Handed, errors.New("only the node itself may send it"))
		}
		h, err := wire.DecodeHanded(req.Data)
		if err != nil {
			return nil, badRequest(wire.Handed, err)
		}
		delete(s.inflight, h.ID)
		if h.Failed {
			return encode(reply{OK: true}), nil
		}
		if o, ok := s.ring.owner(h.ID); ok && o.ID != s.ring.self().ID && s.versions[h.ID] == h.Version {
			err := s.own.drop(h.ID)
			s.own.publish()
			if err != nil {
				return nil, err
			}
			delete(s.versions, h.ID)
		}
		return encode(reply{OK: true}), nil
	})
	s.srv.Handle(wire.Sweep, func(context.Context, genserver.Request) ([]byte, error) {
		s.own.sweep()
		s.own.publish()
		return encode(reply{OK: true}), nil
	})
	s.srv.Handle(wire.Rebalance, func(context.Context, genserver.Request) ([]byte, error) {
		s.rebalance()
		return encode(reply{OK: true}), nil
	})
}

// owns answers a request for id: CodeNotOwner when another node owns it,
// CodeMoving when this node owns it but does not have it yet and the ring
// changed recently, so a handoff may be on its way.
func (s *DSM) owns(id string) error {
	if s.ring.moved() {
		// The ring changed and the watcher has not noted it yet.
		s.changedAt.Store(s.cfg.Now().UnixNano())
	}
	self := s.ring.self()
	if o, ok := s.ring.owner(id); ok && o.ID != self.ID {
		return &kernel.RemoteError{Code: CodeNotOwner, Message: fmt.Sprintf("dsm: %s does not own '%s' (%s does)", self.ID, id, o.ID)}
	}
	if s.own.sems[id] == nil && s.cfg.Now().Sub(time.Unix(0, s.changedAt.Load())) < s.movingWindow() {
		return &kernel.RemoteError{Code: CodeMoving, Message: fmt.Sprintf("dsm: '%s' may be moving to %s after a ring change", id, self.ID)}
	}
	return nil
}

// movingWindow is how long after a ring change this node answers
// CodeMoving for a semaphore it owns but does not have: three hand-off
// checks, plus one hand-off call's whole timeout, since on a loaded
// machine the old owner's call may take that long to land.
func (s *DSM) movingWindow() time.Duration {
	return 3*s.cfg.HandoffInterval + handoffTimeout
}

// rebalance queues a handoff of every semaphore another node owns. A
// batch still being sent is not doubled: the next tick retries.
func (s *DSM) rebalance() {
	self := s.ring.self().ID
	var jobs []handoffJob
	for id := range s.own.sems {
		o, ok := s.ring.owner(id)
		if since, busy := s.inflight[id]; !ok || o.ID == self || (busy && s.cfg.Now().Sub(since) < inflightMax) {
			continue
		}
		if h, ok := s.own.snapshot(id); ok {
			jobs = append(jobs, handoffJob{to: o, h: h, version: s.versions[id]})
		}
	}
	if len(jobs) == 0 {
		return
	}
	select {
	case s.work <- jobs:
		for _, j := range jobs {
			s.inflight[j.h.ID] = s.cfg.Now()
		}
	default:
	}
}
