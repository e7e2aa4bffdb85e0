package dsm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/dsm/internal/wire"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/kernel"
)

// local reports, from the node's own actor, whether it holds semaphore id
// and with how many holders.
func local(t testing.TB, s *DSM, id string) (held bool, active int) {
	t.Helper()
	s.srv.Handle("test-local", func(_ context.Context, r genserver.Request) ([]byte, error) {
		sem := s.own.live(string(r.Data))
		if sem == nil {
			return encode([]int{0, 0}), nil
		}
		return encode([]int{1, len(sem.holders)}), nil
	})
	b, err := s.srv.Call(context.Background(), genserver.Target{Name: s.cfg.Name}, "test-local", []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	var v []int
	if err := msgpackcheck.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v[0] == 1, v[1]
}

// idOwnedBy returns an ID the ring gives to owner.
func idOwnedBy(t *testing.T, s *DSM, owner, prefix string) string {
	for i := range 1000 {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if o, _ := s.ring.owner(id); o.ID == owner {
			return id
		}
	}
	t.Fatalf("no ID owned by %s", owner)
	return ""
}

func isCode(err error, code string) bool { return errors.Is(err, &kernel.RemoteError{Code: code}) }

// Two real nodes, foo (n0) and bar (n1): a semaphore lives only on its
// owner, and either node reaches it.
func TestTwoNodeIntegration(t *testing.T) {
	c, ss := form(t, clustertest.Config{Nodes: 2}, Config{Retries: NoRetries}, false)
	foo, bar := ss.At(0), ss.At(1)
	ctx := clustertest.Context(t, 30*time.Second)
	mine := idOwnedBy(t, foo, "n0", "local")
	theirs := idOwnedBy(t, foo, "n1", "remote")
	for _, id := range []string{mine, theirs} {
		if err := foo.Create(ctx, id, 2); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("post lands only on the owner", func(t *testing.T) {
		for _, c := range []struct {
			id          string
			owner, none *DSM
		}{{mine, foo, bar}, {theirs, bar, foo}} {
			if err := foo.Post(ctx, c.id, "h1", time.Minute); err != nil {
				t.Fatal(err)
			}
			if held, n := local(t, c.owner, c.id); !held || n != 1 {
				t.Fatalf("%s: owner has %v/%d", c.id, held, n)
			}
			if held, _ := local(t, c.none, c.id); held {
				t.Fatalf("%s: the other node has a copy", c.id)
			}
			if err := foo.Close(ctx, c.id, "h1"); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("two holders fill n=2 and closes release them", func(t *testing.T) {
		for _, id := range []string{mine, theirs} {
			if err := foo.Post(ctx, id, "a", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := bar.Post(ctx, id, "b", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := foo.Post(ctx, id, "c", time.Minute); !errors.Is(err, ErrRetriesExhausted) {
				t.Fatalf("third holder of n=2: %v", err)
			}
			if err := bar.Close(ctx, id, "a"); err != nil {
				t.Fatal(err)
			}
			if err := foo.Close(ctx, id, "b"); err != nil {
				t.Fatal(err)
			}
			if info, err := bar.Read(ctx, id); err != nil || info != (Info{N: 2, Active: 0}) {
				t.Fatalf("read %+v %v", info, err)
			}
		}
	})
	t.Run("post to a missing semaphore fails from either node", func(t *testing.T) {
		for _, s := range []*DSM{foo, bar} {
			if err := s.Post(ctx, "nope", "h", time.Second); !isCode(err, CodeNotFound) {
				t.Fatalf("err %v", err)
			}
		}
	})
	t.Run("read returns n and active for both", func(t *testing.T) {
		for _, id := range []string{mine, theirs} {
			if info, err := foo.Read(ctx, id); err != nil || info != (Info{N: 2}) {
				t.Fatalf("%s: %+v %v", id, info, err)
			}
		}
	})
	t.Run("create with another n fails with notp's text", func(t *testing.T) {
		err := bar.Create(ctx, mine, 3)
		if !isCode(err, CodeExists) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a peer cannot tell a node its semaphore was handed off", func(t *testing.T) {
		_, err := genserver.CallRaw(ctx, c.Node(1).Kernel(), genserver.Target{Name: "dsm", Node: c.Node(0).Self()},
			wire.Handed, encode(handed{ID: mine, Version: 0}))
		if !isCode(err, CodeBadRequest) {
			t.Fatalf("err %v", err)
		}
		if held, _ := local(t, foo, mine); !held {
			t.Fatal("the semaphore was dropped")
		}
	})
	t.Run("destroy and the semaphore is gone", func(t *testing.T) {
		if err := bar.Destroy(ctx, theirs); err != nil {
			t.Fatal(err)
		}
		if _, err := foo.Read(ctx, theirs); !isCode(err, CodeNotFound) {
			t.Fatalf("err %v", err)
		}
		if err := bar.Destroy(ctx, theirs); err != nil {
			t.Fatalf("destroying a missing semaphore: %v", err)
		}
	})
}

// Nodes join and leave the ring while holders post and close: every
// semaphore ends up on exactly one node, its owner, with its limit, and
// no semaphore ever had more holders than its limit.
func TestHandoffOnRingChangesLosesAndDoublesNothing(t *testing.T) {
	cfg := Config{HandoffInterval: 200 * time.Millisecond, MinWait: time.Millisecond, MaxWait: 10 * time.Millisecond}
	c, ss := form(t, clustertest.Config{Nodes: 3, Faults: true, Seed: 5}, cfg, false)
	ctx := clustertest.Context(t, 60*time.Second)
	const sems, limit = 16, 2
	// A holder closed while its semaphore moves may come back with a copy
	// handed over late, and then lasts until its TTL: short here, so the
	// end state shows every place given back.
	const holderTTL = 3 * time.Second
	ids := make([]string, sems)
	for i := range ids {
		ids[i] = fmt.Sprintf("sem-%d", i)
		if err := ss.At(0).Create(ctx, ids[i], limit); err != nil {
			t.Fatal(err)
		}
	}

	// The model: who believes they hold a place in each semaphore.
	var mu sync.Mutex
	inside := map[string]map[string]bool{}
	var violations []string
	var posts int
	// closeAll gives up holder's place, retrying while ownership moves.
	closeAll := func(s *DSM, id, holder string) {
		for {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := s.Close(cctx, id, holder)
			cancel()
			if err == nil || ctx.Err() != nil {
				return
			}
		}
	}
	clients := []*DSM{ss.At(0), ss.At(2)} // n0 and n2 stay in the ring
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			holder := fmt.Sprintf("w%d", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[rng.IntN(sems)]
				s := clients[rng.IntN(2)]
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := s.Post(pctx, id, holder, holderTTL)
				cancel()
				if err != nil {
					if isCode(err, CodeNotFound) {
						mu.Lock()
						violations = append(violations, fmt.Sprintf("%s lost: %v", id, err))
						mu.Unlock()
					}
					closeAll(s, id, holder) // the place may have been granted without an answer
					continue
				}
				mu.Lock()
				if inside[id] == nil {
					inside[id] = map[string]bool{}
				}
				inside[id][holder] = true
				if len(inside[id]) > limit {
					violations = append(violations, fmt.Sprintf("%s: %d holders of %d", id, len(inside[id]), limit))
				}
				posts++
				mu.Unlock()
				time.Sleep(time.Millisecond) // the work the place guards
				mu.Lock()
				delete(inside[id], holder) // leave the model first: a close may land late
				mu.Unlock()
				closeAll(s, id, holder)
			}
		})
	}
	progress := func(what string) {
		t.Helper()
		mu.Lock()
		before := posts
		mu.Unlock()
		clustertest.WaitFor(t, what, func() bool { mu.Lock(); defer mu.Unlock(); return posts >= before+30 })
	}
	progress("posts on n0, n1, n2")
	d := c.Add()
	if err := c.Node(0).Ring().Meet(ctx, c.Node(d).Self()); err != nil {
		t.Fatal(err)
	}
	progress("posts after n3 joined")
	if err := c.Node(0).Ring().Remove(ctx, c.Node(1).Self(), false); err != nil {
		t.Fatal(err)
	}
	progress("posts after n1 was removed")
	close(stop)
	wg.Wait()

	// Quiesce: every node's view agrees and every handoff has landed.
	stay := []int{0, 2, d}
	clustertest.WaitFor(t, "semaphores settled on their owners", func() bool {
		for _, id := range ids {
			owner, _ := ss.At(0).ring.owner(id)
			copies := 0
			for i, n := range c.Nodes() {
				if held, _ := local(t, ss.At(i), id); held {
					copies++
					if n.Self().ID != owner.ID {
						return false
					}
				}
			}
			if copies != 1 {
				return false
			}
		}
		return true
	})
	for _, id := range ids {
		for _, i := range stay {
			info, err := ss.At(i).Read(ctx, id)
			if err != nil || info.N != limit || info.Active > limit {
				t.Errorf("%s from %s: %+v %v, want n=%d", id, c.Node(i).Self().ID, info, err, limit)
			}
		}
		clustertest.WaitFor(t, id+" with every place given back", func() bool {
			info, err := ss.At(stay[0]).Read(ctx, id)
			return err == nil && info == (Info{N: limit})
		})
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	t.Logf("%d posts", posts)
}
