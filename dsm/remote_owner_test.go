package dsm

import (
	"context"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
)

// A client on n0 and semaphores owned by other nodes, with Post's
// default retries (until the request's deadline).
func TestClientToARemoteOwner(t *testing.T) {
	// A short HandoffInterval shortens the window after the ring formed
	// in which an owner answers CodeMoving, which clients follow, for a
	// semaphore it does not have.
	c, ss := form(t, clustertest.Config{Nodes: 3}, Config{HandoffInterval: 50 * time.Millisecond}, true)
	a := ss.At(0)
	ctx := clustertest.Context(t, 60*time.Second)

	// An owner's error reply that is not a full semaphore ends Post at
	// once: the owner is asked exactly once and its error returned.
	t.Run("an owner's error reply to Post is not retried", func(t *testing.T) {
		missing := idOwnedBy(t, a, "n1", "missing")
		// Read follows CodeMoving until the owner's window has passed and
		// it answers that the semaphore does not exist.
		if _, err := a.Read(ctx, missing); !isCode(err, CodeNotFound) {
			t.Fatalf("Read of a missing semaphore: %v, want CodeNotFound", err)
		}
		owner := c.Node(1).Kernel()
		calls, before := owner.Stats().CallsHandled, a.Stats()
		// A bound well under ctx's, for a Post that would retry until its
		// deadline.
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := a.Post(pctx, missing, "h", time.Minute); !isCode(err, CodeNotFound) {
			t.Fatalf("Post to a missing semaphore: %v, want the owner's CodeNotFound", err)
		}
		if n := owner.Stats().CallsHandled - calls; n != 1 {
			t.Fatalf("the owner handled %d calls during Post, want 1", n)
		}
		if after := a.Stats(); after.PostsFailed != before.PostsFailed+1 || after.PostsFull != before.PostsFull {
			t.Fatalf("stats %+v after %+v: want one more failed Post", after, before)
		}
	})

	// CloseAsync casts the Close to the owner, which gives the place up.
	t.Run("CloseAsync reaches a remote owner", func(t *testing.T) {
		id := idOwnedBy(t, a, "n2", "async")
		owner := ss.At(2)
		if err := a.Create(ctx, id, 1); err != nil {
			t.Fatal(err)
		}
		if err := a.Post(ctx, id, "h", MaxTTL); err != nil {
			t.Fatal(err)
		}
		if info, err := owner.Read(ctx, id); err != nil || info != (Info{N: 1, Active: 1}) {
			t.Fatalf("owner's Read after Post: %+v, %v", info, err)
		}
		if held, _ := local(t, a, id); held {
			t.Fatal("the client's node has a copy of the semaphore")
		}
		closes := a.Stats().Closes
		if err := a.CloseAsync(id, "h"); err != nil {
			t.Fatal(err)
		}
		if got := a.Stats().Closes; got != closes+1 {
			t.Fatalf("Closes %d, want %d", got, closes+1)
		}
		clustertest.WaitFor(t, "the owner to release the place", func() bool {
			info, err := owner.Read(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return info == Info{N: 1}
		})
	})
}
