package gossip

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// A member memberlist reports dead is marked down in the kernel, so calls
// to it fail at once with kernel.ErrNodeDown (from the membership mark, not
// only from a failed redial) instead of waiting for their deadline.
func TestDeadMemberFailsCallsFast(t *testing.T) {
	nodes := cluster(t, 3)
	n0 := nodes[0]
	testutil.WaitFor(t, "n2 alive in memberlist", func() bool { return n0.r.Health("n2") == HealthAlive })
	dead := nodes[2].self()
	nodes[2].close()
	n0.waitEvent(EventDead, "n2")
	testutil.WaitFor(t, "n2 to stay dead", func() bool { return n0.r.Health("n2") == HealthDead })
	callCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := n0.k.Call(callCtx, dead, "anything", nil)
	took := time.Since(start)
	var le *kernel.LinkError
	if !errors.Is(err, kernel.ErrNodeDown) || errors.As(err, &le) || took > 2*time.Second {
		t.Fatalf("call to a dead member = %v after %v, want ErrNodeDown from the membership mark", err, took)
	}
	t.Logf("call to a member memberlist reports dead failed after %v: %v", took, err)
}
