package clustertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Service is what Run starts beside every node: a lock manager, say.
// Start and Stop are called on the test's goroutine, Stop once after each
// successful Start.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Services holds one instance of a Service per node of a Cluster, started
// after its node starts and stopped before its node stops (see [Run]).
type Services[S Service] struct {
	build func(c *Cluster, i int) (S, error)

	mu sync.Mutex
	at map[int]*instance[S]
}

type instance[S Service] struct {
	s       S
	running bool
}

// Run has every node of a cluster started with cfg run a service: each
// time node i starts, build makes node i's instance (typically on
// c.Node(i), keeping its files in c.Dir(i)) and Run starts it; before
// node i stops, Run stops it. A restarted node gets a new instance built
// on the same directory, as a crashed process would be restarted. Run
// sets cfg.OnStart and cfg.OnStop, calling the ones set before it:
// theirs first on start, last on stop. Call it before Start.
func Run[S Service](cfg *Config, build func(c *Cluster, i int) (S, error)) *Services[S] {
	ss := &Services[S]{build: build, at: map[int]*instance[S]{}}
	onStart, onStop := cfg.OnStart, cfg.OnStop
	cfg.OnStart = func(ctx context.Context, c *Cluster, i int) error {
		if onStart != nil {
			if err := onStart(ctx, c, i); err != nil {
				return err
			}
		}
		return ss.start(ctx, c, i)
	}
	cfg.OnStop = func(ctx context.Context, c *Cluster, i int) error {
		err := ss.stop(ctx, i)
		if onStop != nil {
			err = errors.Join(err, onStop(ctx, c, i))
		}
		return err
	}
	return ss
}

func (ss *Services[S]) start(ctx context.Context, c *Cluster, i int) error {
	s, err := ss.build(c, i)
	if err != nil {
		return fmt.Errorf("clustertest: build node %d's service: %w", i, err)
	}
	if err := s.Start(ctx); err != nil {
		return fmt.Errorf("clustertest: start node %d's service: %w", i, err)
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.at[i] = &instance[S]{s: s, running: true}
	return nil
}

func (ss *Services[S]) stop(ctx context.Context, i int) error {
	ss.mu.Lock()
	in := ss.at[i]
	running := in != nil && in.running
	if running {
		in.running = false
	}
	ss.mu.Unlock()
	if !running {
		return nil
	}
	if err := in.s.Stop(ctx); err != nil {
		return fmt.Errorf("clustertest: stop node %d's service: %w", i, err)
	}
	return nil
}

// At returns node i's instance: the running one, or the last one if its
// node stopped (so a goroutine still using it gets the service's closed
// error, not a nil pointer); the zero S if node i never ran one. A
// restart replaces it, so a goroutine that outlives restarts calls At
// for each use. Safe for concurrent use.
func (ss *Services[S]) At(i int) S {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if in := ss.at[i]; in != nil {
		return in.s
	}
	var zero S
	return zero
}
