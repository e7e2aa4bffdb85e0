package conflux

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// Read returns the state with the consistency c. Stale is State. For
// Linearizable the leader computes a read index (once per term a barrier,
// so entries of older terms are applied; then its commit index, and a
// quorum confirming it is still the leader), a follower asks the leader
// for it through the kernel, and this node waits until it has applied
// that index before returning its state. The errors are Perform's
// (nothing is ever appended by a read; ErrNoLeader with ctx's error when
// no leader answered in time). ctx without deadline gets
// Config.PerformTimeout.
func (s *Store[S, A]) Read(ctx context.Context, c Consistency) (_ S, err error) {
	defer s.observeRead(c, &err)
	var zero S
	if _, err := s.running(); err != nil {
		return zero, err
	}
	switch c {
	case Stale:
		return s.State(), nil
	case Linearizable:
	default:
		return zero, fmt.Errorf("conflux: unknown consistency %d", c)
	}
	ctx, cancel, err := s.admitCtx(ctx)
	if err != nil {
		return zero, err
	}
	defer s.release(cancel)
	rp, _, _, err := s.route(ctx, "readindex", &performReq{})
	if err != nil {
		return zero, err
	}
	if err := s.WaitApplied(ctx, rp.I); err != nil {
		return zero, err
	}
	return s.State(), nil
}

// readIndex is the leader's side of a linearizable read: the commit index
// after a barrier of the current term, confirmed by a quorum. Reading
// the index before the quorum check (not after) keeps the index from
// including anything a newer leader could have committed meanwhile.
func (s *Store[S, A]) readIndex(ctx context.Context) (uint64, error) {
	r, err := s.running()
	if err != nil {
		return 0, err
	}
	s.propMu.Lock()
	err = s.ensureBarrier(ctx, r)
	s.unlockProp()
	if err != nil {
		return 0, err
	}
	term := s.barrierTerm.Load()
	ri := r.CommitIndex()
	if err := s.await(ctx, r.VerifyLeader()); err != nil {
		l, _ := s.Leader()
		return 0, fmt.Errorf("%w: %w", &NotLeaderError{Leader: l}, err)
	}
	if r.CurrentTerm() != term || r.State() != raft.Leader {
		l, _ := s.Leader()
		return 0, &NotLeaderError{Leader: l}
	}
	return ri, nil
}
