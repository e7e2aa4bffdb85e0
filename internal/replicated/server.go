package replicated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/metrics"
	"github.com/notp-go/notp/table"
)

// Errors are the lifecycle sentinels a [Server] returns: the embedding
// package's own (each wrapping notp's), so callers match either with
// errors.Is.
type Errors struct {
	// AlreadyStarted is returned by a second Start.
	AlreadyStarted error
	// NotStarted is returned by Stop, Close and Running before Start.
	NotStarted error
	// Closed is returned by Start and Running after Stop or Close.
	Closed error
}

// NewErrors returns lifecycle sentinels whose messages start with
// "<prefix>: " and that wrap notp's ErrAlreadyStarted, ErrNotStarted and
// ErrClosed.
func NewErrors(prefix string) Errors {
	return Errors{
		AlreadyStarted: fmt.Errorf("%s: %w", prefix, notp.ErrAlreadyStarted),
		NotStarted:     fmt.Errorf("%s: %w", prefix, notp.ErrNotStarted),
		Closed:         fmt.Errorf("%s: %w", prefix, notp.ErrClosed),
	}
}

// Config configures a [Server]. New copies it.
type Config struct {
	// Prefix starts every error message and log line, followed by ": "
	// ("dlm", "dsm").
	Prefix string
	// Name is the genserver's name on the node's kernel and the name of
	// the table it keeps its state in.
	Name string
	// Dir is the table's directory; "" keeps the state in memory only.
	Dir string
	// Logger receives the genserver's and the table's logs; nil discards.
	Logger *slog.Logger
	// Errors are the sentinels Start, Stop and Running return.
	Errors Errors
	// Metrics is where Start registers Source and Stop removes it; nil
	// (or a nil Source) runs without metrics.
	Metrics *metrics.Collector
	// Source reports the embedding type's Stats.
	Source metrics.Source
}

type phase uint8

const (
	phaseNew phase = iota
	phaseStarted
	phaseStopped
)

// Server is one node's replica of a replicated service: a genserver whose
// state lives in a durable table, with background loops (sweepers,
// watchers) that run while it is started. It moves once from new to
// started to stopped; a stopped Server is not started again. All methods
// are safe for concurrent use.
type Server struct {
	cfg Config
	gs  *genserver.Server

	mu         sync.Mutex // guards phase, st, stop, unregister
	phase      phase
	st         *table.Table
	stop       context.CancelFunc // ends the loops' context
	loops      sync.WaitGroup
	unregister func()
}

// New returns a new (not started) Server with a genserver named
// cfg.Name on k. Handlers are registered on [Server.Genserver] before
// Start.
func New(k *kernel.Kernel, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	gs, err := genserver.New(k, genserver.Config{Name: cfg.Name, Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Prefix, err)
	}
	return &Server{cfg: cfg, gs: gs}, nil
}

// Started returns a Server that is started and has no genserver, table
// or loops, for tests of a client whose peers are fakes: Running returns
// nil, and Stop only moves it to stopped.
func Started(errs Errors) *Server {
	return &Server{cfg: Config{Errors: errs}, phase: phaseStarted, stop: func() {}}
}

// Genserver is the server's genserver, for registering handlers and for
// calls and casts to its peers.
func (s *Server) Genserver() *genserver.Server { return s.gs }

// Start opens the table (Config.Dir, every change fsynced before it is
// answered), hands it to load to restore the state, starts the genserver,
// runs each loop on its own goroutine until Stop, and registers the
// metrics source. load's error is returned as it is, so it carries its
// own prefix; the table is closed again on any failure.
func (s *Server) Start(ctx context.Context, load func(context.Context, *table.Table) error, loops ...func(context.Context)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.byPhase(nil, s.cfg.Errors.AlreadyStarted, s.cfg.Errors.Closed); err != nil {
		return err
	}
	st, err := table.Open(table.Config{Dir: s.cfg.Dir, Name: s.cfg.Name, Sync: table.SyncAlways, Logger: s.cfg.Logger})
	if err != nil {
		return fmt.Errorf("%s: open table: %w", s.cfg.Prefix, err)
	}
	if err := load(ctx, st); err != nil {
		st.Close()
		return err
	}
	if err := s.gs.Start(ctx); err != nil {
		st.Close()
		return fmt.Errorf("%s: %w", s.cfg.Prefix, err)
	}
	s.st = st
	lctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	for _, loop := range loops {
		s.loops.Go(func() { loop(lctx) })
	}
	s.phase = phaseStarted
	s.registerMetrics()
	return nil
}

// Every returns a loop for Start that calls fn every interval until its
// context ends.
func Every(interval time.Duration, fn func()) func(context.Context) {
	return func(ctx context.Context) {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				fn()
			}
		}
	}
}

// Stop removes the metrics source, ends the loops and waits for them,
// stops the genserver and closes the table; the state stays on disk for
// the next Server on the same Dir. A second Stop returns nil; a Stop
// before Start returns Errors.NotStarted.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseStarted {
		return s.byPhase(s.cfg.Errors.NotStarted, nil, nil)
	}
	s.phase = phaseStopped
	s.unregisterMetrics()
	s.stop()
	s.loops.Wait()
	if s.gs == nil { // a Server made by Started
		return nil
	}
	// One error per part, joined, so Close can drop the cancellation it
	// caused and keep a failure to close the table.
	var errs []error
	if err := s.gs.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("%s: stop: %w", s.cfg.Prefix, err))
	}
	if err := s.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("%s: stop: close table: %w", s.cfg.Prefix, err))
	}
	return errors.Join(errs...)
}

// Close stops the server at once: Stop with an already cancelled context,
// so the genserver answers the requests still queued with
// genserver.CodeStopped instead of handling them; the loops are still
// waited for and the table still closed. It returns Stop's errors other
// than that cancellation: Errors.NotStarted before Start, nil after a
// Stop or Close.
func (s *Server) Close() error { return lifecycle.StopNow(s.Stop) }

// Running returns nil while the server is started, Errors.NotStarted
// before and Errors.Closed after.
func (s *Server) Running() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byPhase(s.cfg.Errors.NotStarted, nil, s.cfg.Errors.Closed)
}

// byPhase returns the error given for the current phase; s.mu is held.
func (s *Server) byPhase(onNew, onStarted, onStopped error) error {
	switch s.phase {
	case phaseNew:
		return onNew
	case phaseStarted:
		return onStarted
	}
	return onStopped
}

// registerMetrics adds the source to the node's metrics; Start calls it
// with s.mu held. A node at its source limit runs the server without
// metrics, with a warning.
func (s *Server) registerMetrics() {
	if s.cfg.Metrics == nil || s.cfg.Source == nil {
		return
	}
	unreg, err := s.cfg.Metrics.Register(s.cfg.Source)
	if err != nil {
		s.cfg.Logger.Warn(s.cfg.Prefix+": no metrics", "name", s.cfg.Name, "err", err)
		return
	}
	s.unregister = unreg
}

// unregisterMetrics undoes registerMetrics; Stop calls it with s.mu held.
func (s *Server) unregisterMetrics() {
	if s.unregister != nil {
		s.unregister()
		s.unregister = nil
	}
}
