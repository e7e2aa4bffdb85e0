package dlm

import (
	"context"
	"fmt"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/dlm/internal/wire"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
)

// Lock is a granted lock.
type Lock struct {
	ID, Holder string
	// Token is the write lock's fencing token: larger than the token of
	// every write lock of this ID granted before (see the package doc for
	// the conditions). Read locks have Token 0.
	Token uint64
	// Validity is how long the lock is still safely held, measured from
	// when the request returned: ttl - elapsed - drift margin.
	Validity time.Duration
	// Nodes are the replicas that granted the lock.
	Nodes []notp.Node
}

// caller sends replica events; genserver in production, a fake in tests.
type caller interface {
	call(ctx context.Context, node notp.Node, event string, data []byte) ([]byte, error)
	cast(node notp.Node, event string, data []byte) error
}

type serverCaller struct {
	s    *genserver.Server
	name string
}

func (c serverCaller) call(ctx context.Context, node notp.Node, event string, data []byte) ([]byte, error) {
	return c.s.Call(ctx, genserver.Target{Name: c.name, Node: node}, event, data)
}

func (c serverCaller) cast(node notp.Node, event string, data []byte) error {
	return c.s.Cast(genserver.Target{Name: c.name, Node: node}, event, data)
}

// DLM is one node's distributed lock manager: a replica (a genserver named
// Config.Name) that grants its share of every lock, and the client that
// takes locks from a quorum of replicas. All methods are safe for
// concurrent use.
type DLM struct {
	cfg    Config
	base   *replicated.Server // lifecycle, genserver, table, sweeper, metrics
	srv    *genserver.Server
	ring   ringView
	rpc    caller
	jitter *replicated.Jitter

	stats counters
	rep   *replica // owned by the server's actor goroutine while started
}

// New returns a stopped DLM on node's kernel and ring. It validates and
// copies cfg.
func New(node *cluster.Node, cfg Config) (*DLM, error) {
	if err := replicated.PrepareConfig(node == nil, ErrInvalidConfig, cfg.setDefaults, cfg.Validate); err != nil {
		return nil, err
	}
	d := &DLM{cfg: cfg, ring: clusterRing{node}, jitter: replicated.NewJitter()}
	base, err := replicated.New(node.Kernel(), replicated.Config{Prefix: "dlm", Name: cfg.Name, Dir: cfg.Dir, Logger: cfg.Logger,
		Errors: lifecycle, Metrics: node.Metrics(), Source: d.collect})
	if err != nil {
		return nil, err
	}
	d.base, d.srv, d.rpc = base, base.Genserver(), serverCaller{base.Genserver(), cfg.Name}
	d.handle()
	return d, nil
}

// Start opens the replica's store (Config.Dir), restores its locks with
// the time they have left and its fencing counter, and registers the
// replica on the node's kernel.
func (d *DLM) Start(ctx context.Context) error {
	return d.base.Start(ctx, d.load, replicated.Every(d.cfg.SweepInterval, d.sweep))
}

// load restores the replica from its table; Start calls it before the
// genserver runs.
func (d *DLM) load(ctx context.Context, st *table.Table) error {
	rep := newReplica(st, &d.cfg)
	if err := rep.load(ctx); err != nil {
		return fmt.Errorf("dlm: %w", err)
	}
	d.rep = rep
	d.stats.held.Store(int64(len(rep.locks)))
	return nil
}

// Stop unregisters the replica, lets it answer the requests already
// queued (until ctx ends: the rest are then refused with
// genserver.CodeStopped and Stop returns ctx's error) and closes its
// store. Persisted locks stay on disk for the next Start of a new DLM on
// the same Dir. A stopped DLM cannot be started again; a second Stop
// returns nil, and Stop before Start ErrNotStarted.
func (d *DLM) Stop(ctx context.Context) error { return d.base.Stop(ctx) }

// Close stops the DLM at once: Stop with an already cancelled context, so
// requests still queued at the replica are answered with
// genserver.CodeStopped instead of handled. It returns Stop's errors other than that cancellation: ErrNotStarted
// before Start, nil after a Stop or Close.
func (d *DLM) Close() error { return d.base.Close() }

// sweep asks the replica to drop its expired locks; Start runs it every
// SweepInterval.
func (d *DLM) sweep() {
	_ = d.srv.Cast(genserver.Target{Name: d.cfg.Name}, wire.Sweep, encode(request{ID: "*"}))
}

func (d *DLM) running() error { return d.base.Running() }

// handle registers the replica's events on the genserver.
func (d *DLM) handle() {
	ops := map[string]func(r request) (reply, error){
		wire.RLock:   func(r request) (reply, error) { return d.rep.rlock(r.ID, r.Holder, r.TTL()) },
		wire.WLock:   func(r request) (reply, error) { return d.rep.wlock(r.ID, r.Holder, r.TTL()) },
		wire.RUnlock: func(r request) (reply, error) { return d.rep.runlock(r.ID, r.Holder) },
		wire.WUnlock: func(r request) (reply, error) { return d.rep.wunlock(r.ID, r.Holder) },
		wire.Commit:  func(r request) (reply, error) { return d.rep.commit(r.ID, r.Holder, r.Token) },
		wire.Sweep:   func(request) (reply, error) { d.rep.sweep(); return reply{OK: true}, nil },
	}
	for ev, op := range ops {
		d.srv.Handle(ev, func(_ context.Context, req genserver.Request) ([]byte, error) {
			r, err := wire.DecodeRequest(ev, req.Data)
			if err != nil {
				return nil, &kernel.RemoteError{Code: CodeBadRequest, Message: fmt.Sprintf("dlm: %s: %v", ev, err)}
			}
			rep, err := op(r)
			d.stats.held.Store(int64(len(d.rep.locks)))
			if err != nil {
				return nil, err
			}
			if ev == wire.Commit && rep.OK {
				d.stats.tokens.Add(1)
			}
			return encode(rep), nil
		})
	}
}
