package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// keysOnAll runs a keys command on every node, as notp-cli's fan-out
// does, and checks each node's keys afterwards.
func keysOnAll(t *testing.T, adm *admin, ns []*cluster.Node, a command.Args, wantIDs ...string) {
	t.Helper()
	for _, n := range ns {
		var d command.KeysData
		adm.ok(n, command.Keys, a, &d)
		if d.Node != n.Self().ID || len(d.Keys) != len(wantIDs) {
			t.Fatalf("keys %s on %s: %+v, want %q", a.KeyOp, n.Self().ID, d, wantIDs)
		}
		for i, k := range d.Keys {
			if k.ID != wantIDs[i] || k.Primary != (i == 0) {
				t.Fatalf("keys %s on %s: %+v, want %q, the first primary", a.KeyOp, n.Self().ID, d.Keys, wantIDs)
			}
		}
	}
}

// steadyMemberlist is clustertest.FastMemberlist with a failure detector
// slow enough not to flap on a loaded machine under -race (a probe may take
// 400 ms; dead after 2 s of suspicion), while a node that cannot be
// reached with the cluster's keys is still declared dead within seconds.
func steadyMemberlist() *memberlist.Config {
	c := clustertest.FastMemberlist()
	c.ProbeInterval = 500 * time.Millisecond
	c.ProbeTimeout = 400 * time.Millisecond
	c.SuspicionMult = 4
	return c
}

// The cookie of a running three-node cluster rotates through the keys
// command (install everywhere, use everywhere, remove everywhere) while
// every node calls and casts to every other: no call fails, every cast
// sent arrives, and no node is ever seen dead or gone (a passing
// suspicion on a loaded machine is allowed), from before the rotation
// until several failure-detector rounds after the old key is gone.
// Connections opened after the rotation, by the nodes and to them,
// authenticate with the new cookie; the old cookie opens none.
//
// A node left on the old key alone would show: its peers' links to it
// redial with the new key once they remove the old one and are refused
// (calls fail or time out, casts stay queued), and memberlist's probes,
// encrypted with the new key's derivative, go unanswered (the node turns
// suspect well within the watch that follows the rotation).
func TestCookieRotationUnderTraffic(t *testing.T) {
	adm, ns := threeNodesWith(t, "", steadyMemberlist)
	const newCookie = "cluster rotation cookie 0123456789abcdef"
	// sent[i] and received[i] count the casts to ns[i].
	sent := make([]atomic.Int64, len(ns))
	received := make([]atomic.Int64, len(ns))
	for i, n := range ns {
		k := n.Kernel()
		if err := k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { k.Reply(m.From, m.Data) })); err != nil {
			t.Fatal(err)
		}
		if err := k.Register("sink", kernel.HandlerFunc(func(kernel.Message) { received[i].Add(1) })); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	// pairCalls[i][j] counts the calls from ns[i] to ns[j] that succeeded.
	pairCalls := make([][]atomic.Int64, len(ns))
	for i := range pairCalls {
		pairCalls[i] = make([]atomic.Int64, len(ns))
	}
	var failMu sync.Mutex
	var firstErr error
	fail := func(err error) {
		failMu.Lock()
		defer failMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	failed := func() error {
		failMu.Lock()
		defer failMu.Unlock()
		return firstErr
	}
	for i, from := range ns {
		for j, to := range ns {
			if from == to {
				continue
			}
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_, err := from.Kernel().Call(ctx, to.Self(), "echo", []byte("x"))
					cancel()
					if err == nil {
						if err = from.Kernel().Cast(to.Self(), "sink", nil); err == nil {
							sent[j].Add(1)
						}
					}
					if err != nil {
						fail(fmt.Errorf("%s to %s: %w", from.Self().ID, to.Self().ID, err))
						return
					}
					calls.Add(1)
					pairCalls[i][j].Add(1)
				}
			})
		}
	}
	// No node drops out: every node sees all three members alive, all
	// along.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, n := range ns {
				ms := n.Ring().Members()
				if len(ms) != len(ns) {
					fail(fmt.Errorf("%s sees %d members, want %d", n.Self().ID, len(ms), len(ns)))
				}
				for _, m := range ms {
					// Suspect is a doubt the member refutes; dead is
					// dropping out.
					if m.Health == gossip.HealthDead || m.Health == gossip.HealthLeft {
						fail(errors.New(n.Self().ID + " saw " + m.Node.ID + " " + m.Health.String()))
					}
				}
			}
		}
	})
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer halt()
	// progress waits until calls between every pair of nodes went on.
	progress := func(what string) {
		t.Helper()
		var was [][]int64
		for i := range ns {
			was = append(was, make([]int64, len(ns)))
			for j := range ns {
				was[i][j] = pairCalls[i][j].Load()
			}
		}
		clustertest.WaitFor(t, "calls "+what, func() bool {
			if failed() != nil {
				return true
			}
			for i := range ns {
				for j := range ns {
					if i != j && pairCalls[i][j].Load() < was[i][j]+20 {
						return false
					}
				}
			}
			return true
		})
		if err := failed(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	oldID, newID := kernel.KeyID(testCookie), kernel.KeyID(newCookie)
	sealed, err := adm.k.SealCookie(newCookie)
	if err != nil {
		t.Fatal(err)
	}
	progress("before the rotation")
	keysOnAll(t, adm, ns, command.Args{KeyOp: command.KeyInstall, Sealed: sealed}, oldID, newID)
	progress("after install")
	keysOnAll(t, adm, ns, command.Args{KeyOp: command.KeyUse, KeyID: newID}, newID, oldID)
	progress("after use")
	keysOnAll(t, adm, ns, command.Args{KeyOp: command.KeyRemove, KeyID: oldID}, newID)
	progress("after remove")

	// New connections, with traffic still flowing: a kernel holding only
	// the new cookie dials every node and calls it, and every node dials
	// it (a fresh link, proving the node's primary key) and calls it.
	probe := newAdmin(t, newCookie)
	if err := probe.k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { probe.k.Reply(m.From, m.Data) })); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := probe.k.Connect(n.Self()); err != nil {
			t.Fatal(err)
		}
		if _, err := probe.k.Call(ctx, n.Self(), "echo", []byte("in")); err != nil {
			t.Fatalf("a new connection with the new cookie to %s: %v", n.Self().ID, err)
		}
		if err := n.Kernel().Connect(probe.k.Self()); err != nil {
			t.Fatal(err)
		}
		if err := n.Kernel().WaitConnected(ctx, probe.k.Self().ID); err != nil {
			t.Fatalf("%s's new link with the new cookie: %v", n.Self().ID, err)
		}
		if _, err := n.Kernel().Call(ctx, probe.k.Self(), "echo", []byte("out")); err != nil {
			t.Fatalf("%s's call over its new link: %v", n.Self().ID, err)
		}
		cancel()
	}

	// Keep the traffic and the health watch going for several rounds of
	// the failure detector the nodes run (steadyMemberlist): every member
	// is probed within three probe intervals, and a member whose probes
	// fail turns suspect at once and dead after the suspicion timeout
	// (SuspicionMult probe intervals below ten nodes); the watch covers
	// that twice over.
	ml := steadyMemberlist()
	suspicion := time.Duration(ml.SuspicionMult) * ml.ProbeInterval
	watch := 4*ml.ProbeInterval + 2*suspicion
	for end := time.Now().Add(watch); time.Now().Before(end); {
		progress("after the rotation")
	}
	halt()
	if err := failed(); err != nil {
		t.Fatalf("during the rotation: %v", err)
	}
	t.Logf("%d calls and casts during the rotation, watched %v after it", calls.Load(), watch)
	clustertest.WaitFor(t, "every cast received", func() bool {
		for i := range ns {
			if received[i].Load() < sent[i].Load() {
				return false
			}
		}
		return true
	})
	for i, n := range ns {
		if s, r := sent[i].Load(), received[i].Load(); r != s {
			t.Errorf("%s received %d casts, %d were sent", n.Self().ID, r, s)
		}
		if s := n.Kernel().Stats(); s.CallsLost != 0 || s.QueueDrops != 0 {
			t.Errorf("%s: %d calls lost, %d queue drops", n.Self().ID, s.CallsLost, s.QueueDrops)
		}
	}

	// A link between two members, dropped and dialed anew, comes up with
	// the new key and carries calls.
	a, b := ns[0].Kernel(), ns[1].Self()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Disconnect(ctx, b.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := a.Connect(b); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitConnected(ctx, b.ID); err != nil {
		t.Fatalf("a's new link to b: %v", err)
	}
	if _, err := a.Call(ctx, b, "echo", []byte("x")); err != nil {
		t.Fatalf("a call over a's new link to b: %v", err)
	}

	rejected := ns[0].Kernel().Stats().RejectedHandshake
	oldAdm := newAdmin(t, testCookie)
	if err := oldAdm.k.Connect(ns[0].Self()); err != nil {
		t.Fatal(err)
	}
	if err := oldAdm.k.WaitConnected(ctx, ns[0].Self().ID); err == nil {
		t.Fatal("the retired cookie still opens a connection")
	}
	clustertest.WaitFor(t, "the old cookie's hello refused by a", func() bool {
		return ns[0].Kernel().Stats().RejectedHandshake > rejected
	})
	var d command.KeysData
	newAdmin(t, newCookie).ok(ns[1], command.Keys, command.Args{KeyOp: command.KeyList}, &d)
	if b, _ := json.Marshal(d); len(d.Keys) != 1 || d.Keys[0].ID != newID {
		t.Fatalf("keys list with the new cookie: %s", b)
	}
}

// The keys command refuses what it cannot do, naming no key.
func TestKeysCommandErrors(t *testing.T) {
	n := startNode(t, nodeOpts{id: "solo"})
	adm := newAdmin(t, testCookie)
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyRemove, KeyID: kernel.KeyID(testCookie)}, command.CodeBadRequest, "")
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyUse, KeyID: "0123456789abcdef"}, command.CodeBadRequest, "")
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyInstall, Sealed: []byte("not sealed at all, just junk")}, command.CodeBadRequest, "")
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyInstall}, command.CodeBadRequest, "")
	adm.fail(n, command.Keys, command.Args{KeyOp: "rotate"}, command.CodeBadRequest, "")
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyUse, KeyID: "not-an-id"}, command.CodeBadRequest, "")
	// A cookie sealed by a kernel on another cookie does not open.
	other := newAdmin(t, "another cookie entirely 0123456789")
	sealed, err := other.k.SealCookie("the cookie to install 0123456789")
	if err != nil {
		t.Fatal(err)
	}
	adm.fail(n, command.Keys, command.Args{KeyOp: command.KeyInstall, Sealed: sealed}, command.CodeBadRequest, "")
}
