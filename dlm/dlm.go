package dlm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/genserver"
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

type lifecycle uint8

const (
	stateNew lifecycle = iota
	stateStarted
	stateStopped
)

// DLM is one node's distributed lock manager: a replica (a genserver named
// Config.Name) that grants its share of every lock, and the client that
// takes locks from a quorum of replicas. All methods are safe for
// concurrent use.
type DLM struct {
	cfg  Config
	srv  *genserver.Server
	ring ringView
	rpc  caller
	node *cluster.Node // for its metrics; nil in tests without a node

	stats      counters
	unregister func() // removes the metrics source; under mu

	mu    sync.Mutex // guards state, st, stop, done, unregister
	state lifecycle
	st    *table.Table
	rep   *replica // owned by the server's actor goroutine while started
	stop  chan struct{}
	done  chan struct{}

	rngMu sync.Mutex
	rng   *rand.Rand
}

// New returns a stopped DLM on node's kernel and ring. It validates and
// copies cfg.
func New(node *cluster.Node, cfg Config) (*DLM, error) {
	if node == nil {
		return nil, fmt.Errorf("%w: nil node", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	srv, err := genserver.New(node.Kernel(), genserver.Config{Name: cfg.Name, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("dlm: %w", err)
	}
	d := &DLM{cfg: cfg, srv: srv, ring: clusterRing{node}, rpc: serverCaller{srv, cfg.Name}, node: node,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	d.handle()
	return d, nil
}

// Start opens the replica's store (Config.Dir), restores its locks with
// the time they have left and its fencing counter, and registers the
// replica on the node's kernel.
func (d *DLM) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateStarted:
		return ErrAlreadyStarted
	case stateStopped:
		return ErrClosed
	}
	st, err := table.Open(table.Config{Dir: d.cfg.Dir, Name: d.cfg.Name, Sync: table.SyncAlways, Logger: d.cfg.Logger})
	if err != nil {
		return fmt.Errorf("dlm: open table: %w", err)
	}
	rep := newReplica(st, &d.cfg)
	if err := rep.load(ctx); err != nil {
		st.Close()
		return fmt.Errorf("dlm: %w", err)
	}
	d.rep, d.st = rep, st
	d.stats.held.Store(int64(len(rep.locks)))
	if err := d.srv.Start(ctx); err != nil {
		st.Close()
		return fmt.Errorf("dlm: %w", err)
	}
	d.stop, d.done = make(chan struct{}), make(chan struct{})
	go d.sweeper(d.stop, d.done)
	d.state = stateStarted
	d.registerMetrics()
	return nil
}

// Stop unregisters the replica and closes its store. Persisted locks stay
// on disk for the next Start of a new DLM on the same Dir. A stopped DLM
// cannot be started again; a second Stop returns nil.
func (d *DLM) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateNew:
		return ErrNotStarted
	case stateStopped:
		return nil
	}
	d.state = stateStopped
	d.unregisterMetrics()
	close(d.stop)
	<-d.done
	err := d.srv.Stop(ctx)
	if cerr := d.st.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("dlm: stop: %w", err)
	}
	return nil
}

// sweeper asks the replica to drop expired locks every SweepInterval.
func (d *DLM) sweeper(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(d.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = d.srv.Cast(genserver.Target{Name: d.cfg.Name}, evSweep, encode(request{ID: "*"}))
		}
	}
}

func (d *DLM) running() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch d.state {
	case stateNew:
		return ErrNotStarted
	case stateStopped:
		return ErrClosed
	}
	return nil
}

// handle registers the replica's events on the genserver.
func (d *DLM) handle() {
	ops := map[string]func(r request) (reply, error){
		evRLock:   func(r request) (reply, error) { return d.rep.rlock(r.ID, r.Holder, r.ttl()) },
		evWLock:   func(r request) (reply, error) { return d.rep.wlock(r.ID, r.Holder, r.ttl()) },
		evRUnlock: func(r request) (reply, error) { return d.rep.runlock(r.ID, r.Holder) },
		evWUnlock: func(r request) (reply, error) { return d.rep.wunlock(r.ID, r.Holder) },
		evCommit:  func(r request) (reply, error) { return d.rep.commit(r.ID, r.Holder, r.Token) },
		evSweep:   func(request) (reply, error) { d.rep.sweep(); return reply{OK: true}, nil },
	}
	for ev, op := range ops {
		d.srv.Handle(ev, func(_ context.Context, req genserver.Request) ([]byte, error) {
			r, err := decodeRequest(ev, req.Data)
			if err != nil {
				return nil, &kernel.RemoteError{Code: CodeBadRequest, Message: fmt.Sprintf("dlm: %s: %v", ev, err)}
			}
			rep, err := op(r)
			d.stats.held.Store(int64(len(d.rep.locks)))
			if err != nil {
				return nil, err
			}
			if ev == evCommit && rep.OK {
				d.stats.tokens.Add(1)
			}
			return encode(rep), nil
		})
	}
}
