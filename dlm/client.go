package dlm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/dlm/internal/wire"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// ErrReplicaDown is the failed vote of a replica memberlist reports dead:
// it is not asked.
var ErrReplicaDown = errors.New("dlm: replica down")

// RLock takes a shared lock on id for holder, held for ttl unless
// released. See the package doc for the algorithm and its failures.
func (d *DLM) RLock(ctx context.Context, id, holder string, ttl time.Duration) (Lock, error) {
	return d.acquire(ctx, false, id, holder, ttl)
}

// WLock takes an exclusive lock on id for holder, held for ttl unless
// released, with a fencing token (Lock.Token).
func (d *DLM) WLock(ctx context.Context, id, holder string, ttl time.Duration) (Lock, error) {
	return d.acquire(ctx, true, id, holder, ttl)
}

// RUnlock releases holder's read lock on id on its replicas. It succeeds
// when a quorum of them answered (granted or not: a replica that no longer
// has the lock has nothing to release); otherwise the error wraps
// ErrNoQuorum and each replica's error.
func (d *DLM) RUnlock(ctx context.Context, id, holder string) error {
	return d.unlock(ctx, wire.RUnlock, id, holder)
}

// WUnlock releases holder's write lock on id, as RUnlock does.
func (d *DLM) WUnlock(ctx context.Context, id, holder string) error {
	return d.unlock(ctx, wire.WUnlock, id, holder)
}

// RUnlockAsync sends the read unlock to id's replicas without waiting
// (notp's runlockAsync); the error joins the sends that failed locally.
func (d *DLM) RUnlockAsync(id, holder string) error {
	return d.unlockAsync(wire.RUnlock, id, holder)
}

// WUnlockAsync sends the write unlock to id's replicas without waiting.
func (d *DLM) WUnlockAsync(id, holder string) error {
	return d.unlockAsync(wire.WUnlock, id, holder)
}

// opCtx applies Config.Timeout to a ctx without a deadline.
func (d *DLM) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return replicated.WithTimeout(ctx, d.cfg.Timeout)
}

func (d *DLM) acquire(ctx context.Context, write bool, id, holder string, ttl time.Duration) (Lock, error) {
	kind := wire.RLock
	if write {
		kind = wire.WLock
	}
	if err := d.running(); err != nil {
		return Lock{}, err
	}
	if err := payload.ValidArgs(ErrInvalidArgument, id, holder); err != nil {
		return Lock{}, err
	}
	if err := validTTL(ttl); err != nil {
		return Lock{}, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	ctx, cancel := d.opCtx(ctx)
	defer cancel()
	l, err := d.tries(ctx, write, kind, id, holder, ttl)
	if err != nil {
		d.stats.refused[mode(write)].Add(1)
	} else {
		d.stats.granted[mode(write)].Add(1)
	}
	return l, err
}

// tries runs attempts until one succeeds, ctx ends or Config.Retries
// are spent.
func (d *DLM) tries(ctx context.Context, write bool, kind, id, holder string, ttl time.Duration) (Lock, error) {
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			d.stats.retries.Add(1)
		}
		d.stats.attempts.Add(1)
		l, err := d.attempt(ctx, write, id, holder, ttl)
		if err == nil {
			return l, nil
		}
		if ctx.Err() != nil {
			return Lock{}, fmt.Errorf("dlm: %s %q: %w after %d attempts (last: %w)", kind, id, ctx.Err(), attempt, err)
		}
		if d.cfg.Retries == NoRetries || (d.cfg.Retries > 0 && attempt > d.cfg.Retries) {
			return Lock{}, &AcquireError{Kind: kind, ID: id, Attempts: attempt, Last: err}
		}
		if serr := d.jitter.Sleep(ctx, d.cfg.MinWait, d.cfg.MaxWait); serr != nil {
			return Lock{}, fmt.Errorf("dlm: %s %q: %w after %d attempts (last: %w)", kind, id, serr, attempt, err)
		}
	}
}

func (d *DLM) quorum(n int) int {
	if d.cfg.Quorum > 0 {
		return d.cfg.Quorum
	}
	return n/2 + 1
}

// drift is the Redlock clock-drift margin of a ttl.
func (d *DLM) drift(ttl time.Duration) time.Duration {
	return time.Duration(float64(ttl)*d.cfg.DriftFactor) + 2*time.Millisecond
}

// attempt is one try: ask every replica, and for a write lock record the
// fencing token on a quorum. Any failure releases what was granted.
func (d *DLM) attempt(ctx context.Context, write bool, id, holder string, ttl time.Duration) (Lock, error) {
	start := d.cfg.Now()
	nodes := d.ring.replicas(id, d.cfg.Replicas)
	if len(nodes) == 0 {
		return Lock{}, errors.New("dlm: the ring has no nodes")
	}
	q := d.quorum(len(nodes))
	actx, cancel := context.WithTimeout(ctx, ttl)
	defer cancel()
	ev, unlockEv := wire.RLock, wire.RUnlock
	if write {
		ev, unlockEv = wire.WLock, wire.WUnlock
	}
	release := func() { _ = d.castAll(nodes, unlockEv, request{ID: id, Holder: holder}) }
	votes := d.vote(actx, nodes, ev, request{ID: id, Holder: holder, Timeout: ttl.Milliseconds()}, q)
	granted, maxTok, errs := tally(votes)
	if len(granted) < q {
		d.stats.quorumFailures.Add(1)
		release()
		return Lock{}, fmt.Errorf("dlm: %s %q granted by %d of %d replicas, quorum %d%s", ev, id, len(granted), len(nodes), q, joinErrs(errs))
	}
	var token uint64
	if write {
		// The clock floor is read now, not at start: the later the
		// time, the higher the floor and the closer to when the token
		// is recorded. start stays the base of the validity.
		token = max(maxTok+1, clockToken(d.cfg.Now()))
		commits := d.vote(actx, granted, wire.Commit, request{ID: id, Holder: holder, Token: token}, q)
		recorded, _, cerrs := tally(commits)
		if len(recorded) < q {
			d.stats.quorumFailures.Add(1)
			release()
			return Lock{}, fmt.Errorf("dlm: wlock %q token %d recorded by %d of %d replicas, quorum %d%s", id, token, len(recorded), len(granted), q, joinErrs(cerrs))
		}
	}
	elapsed := d.cfg.Now().Sub(start)
	validity := ttl - elapsed - d.drift(ttl)
	if validity <= 0 {
		release()
		return Lock{}, fmt.Errorf("dlm: %s %q took %v of its %v ttl", ev, id, elapsed, ttl)
	}
	return Lock{ID: id, Holder: holder, Token: token, Validity: validity, Nodes: granted}, nil
}

// clockToken is the smallest token a write lock takes when its token is
// chosen at t (read from Config.Now once a quorum granted the lock, just
// before the commit vote): t in microseconds since 1970, 0 before then.
// Replicas that an ID moved to in a ring change never saw its earlier
// tokens, so on them this floor is all that can order a new token after
// an older one; it does only if the two clients' clocks differ by less
// than the time between the two tokens being chosen, and otherwise the
// order is not guaranteed. It stays below 2^53 until the year 2255, so
// tokens pass through JSON and float64 exactly.
func clockToken(t time.Time) uint64 {
	return uint64(max(t.UnixMicro(), 0))
}

// vote is one replica's answer to a request.
type vote struct {
	node notp.Node
	rep  reply
	err  error
}

// vote sends ev to every node in parallel and returns once need of them
// granted, once so many failed that need cannot be reached, or once all
// answered; the calls still out are then cancelled and waited for, so a
// replica that hangs costs nothing when a quorum answered. Each call is
// bounded by ctx. Replicas memberlist reports down are not asked. A vote
// not counted has neither a reply nor an error.
func (d *DLM) vote(ctx context.Context, nodes []notp.Node, ev string, req request, need int) []vote {
	data := encode(req)
	out := make([]vote, len(nodes))
	type answer struct {
		i int
		v vote
	}
	ch := make(chan answer, len(nodes))
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel, so the calls return promptly
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pending := 0
	for i, n := range nodes {
		if d.ring.down(n.ID) {
			ch <- answer{i, vote{node: n, err: fmt.Errorf("%w: %s", ErrReplicaDown, n.ID)}}
			pending++
			continue
		}
		pending++
		wg.Go(func() {
			v := vote{node: n}
			b, err := d.rpc.call(ctx, n, ev, data)
			if err == nil {
				v.rep, err = wire.DecodeReply(b)
			}
			if err != nil {
				v.err = fmt.Errorf("dlm: %s on %s: %w", ev, n.ID, err)
			}
			ch <- answer{i, v}
		})
	}
	for i := range out {
		out[i].node = nodes[i]
	}
	ok, failed := 0, 0
	for ; pending > 0 && ok < need && (need > len(nodes) || failed <= len(nodes)-need); pending-- {
		a := <-ch
		out[a.i] = a.v
		if a.v.err == nil && a.v.rep.OK {
			ok++
		} else {
			failed++
		}
	}
	return out
}

// tally returns the granting nodes (notp's findLockPasses), their largest
// reported token and the errors.
func tally(votes []vote) (granted []notp.Node, maxTok uint64, errs []error) {
	for _, v := range votes {
		switch {
		case v.err != nil:
			errs = append(errs, v.err)
		case v.rep.OK:
			granted = append(granted, v.node)
			maxTok = max(maxTok, v.rep.Token)
		}
	}
	return granted, maxTok, errs
}

func joinErrs(errs []error) string {
	if len(errs) == 0 {
		return ""
	}
	return ": " + errors.Join(errs...).Error()
}

func (d *DLM) castAll(nodes []notp.Node, ev string, req request) error {
	data := encode(req)
	var errs []error
	for _, n := range nodes {
		if err := d.rpc.cast(n, ev, data); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *DLM) unlock(ctx context.Context, ev, id, holder string) error {
	if err := d.running(); err != nil {
		return err
	}
	if err := payload.ValidArgs(ErrInvalidArgument, id, holder); err != nil {
		return err
	}
	ctx, cancel := d.opCtx(ctx)
	defer cancel()
	nodes := d.ring.replicas(id, d.cfg.Replicas)
	// Every replica is asked to release (need = all): a not-ok answer
	// only means that replica had nothing to release.
	var errs []error
	answered := 0
	for _, v := range d.vote(ctx, nodes, ev, request{ID: id, Holder: holder}, len(nodes)+1) {
		switch {
		case v.err != nil:
			errs = append(errs, v.err)
		default:
			answered++
		}
	}
	if q := d.quorum(len(nodes)); answered < q {
		d.stats.quorumFailures.Add(1)
		return fmt.Errorf("dlm: %s %q: %w: %d of %d replicas answered, quorum %d: %w",
			ev, id, ErrNoQuorum, answered, len(nodes), q, errors.Join(errs...))
	}
	d.stats.released[mode(ev == wire.WUnlock)].Add(1)
	return nil
}

func (d *DLM) unlockAsync(ev, id, holder string) error {
	if err := d.running(); err != nil {
		return err
	}
	if err := payload.ValidArgs(ErrInvalidArgument, id, holder); err != nil {
		return err
	}
	if err := d.castAll(d.ring.replicas(id, d.cfg.Replicas), ev, request{ID: id, Holder: holder}); err != nil {
		return fmt.Errorf("dlm: %s %q: %w", ev, id, err)
	}
	d.stats.released[mode(ev == wire.WUnlock)].Add(1)
	return nil
}
