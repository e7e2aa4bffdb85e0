package conflux

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A follower whose leader refuses every forwarded request (here: its
// pending requests are at MaxPending) gives up with ErrNoLeader when ctx
// ends, and the error keeps the last refusal and ctx's error in its chain.
func TestNoLeaderKeepsTheLastRefusal(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	leader, follower := g.stores[l], g.stores[(l+1)%3]
	full := int64(leader.cfg.MaxPending)
	leader.pending.Add(full)
	defer leader.pending.Add(-full)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := follower.Perform(ctx, "add", 1)
	if !errors.Is(err, ErrNoLeader) || !errors.Is(err, ErrOverloaded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Perform through a full leader = %v, want ErrNoLeader wrapping ErrOverloaded and the deadline", err)
	}
	if leader.Stats().Overloaded == 0 {
		t.Fatal("the leader refused nothing")
	}
}
