package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// The cookie of a running three-node cluster rotates through the keys
// command (install everywhere, use everywhere, remove everywhere) while
// every node calls and casts to every other: no call or cast fails and
// no node is ever seen other than alive. Afterwards the old cookie opens
// no connection and the new one does.
func TestCookieRotationUnderTraffic(t *testing.T) {
	adm, ns := threeNodes(t, "")
	const newCookie = "cluster rotation cookie 0123456789abcdef"
	var casts atomic.Int64
	for _, n := range ns {
		k := n.Kernel()
		if err := k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { k.Reply(m.From, m.Data) })); err != nil {
			t.Fatal(err)
		}
		if err := k.Register("sink", kernel.HandlerFunc(func(kernel.Message) { casts.Add(1) })); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var calls atomic.Int64
	var failed atomic.Value
	fail := func(err error) { failed.CompareAndSwap(nil, err) }
	for _, from := range ns {
		for _, to := range ns {
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
						err = from.Kernel().Cast(to.Self(), "sink", nil)
					}
					if err != nil {
						fail(err)
						return
					}
					calls.Add(1)
				}
			})
		}
	}
	// No node drops out: every node sees every member alive, all along.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for _, n := range ns {
				for _, m := range n.Ring().Members() {
					if m.Health != gossip.HealthAlive {
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
	progress := func(what string) {
		t.Helper()
		n := calls.Load()
		clustertest.WaitFor(t, "calls "+what, func() bool { return calls.Load() > n+200 || failed.Load() != nil })
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
	// Long enough for connections keyed by the old cookie to be retired
	// and memberlist to probe every member with the new key.
	for range 3 {
		progress("after the rotation")
	}
	halt()
	if err := failed.Load(); err != nil {
		t.Fatalf("during the rotation: %v", err)
	}
	t.Logf("%d calls and casts during the rotation", calls.Load())
	for _, n := range ns {
		if s := n.Kernel().Stats(); s.CallsLost != 0 || s.QueueDrops != 0 {
			t.Errorf("%s: %d calls lost, %d queue drops", n.Self().ID, s.CallsLost, s.QueueDrops)
		}
	}

	oldAdm := newAdmin(t, testCookie)
	if err := oldAdm.k.Connect(ns[0].Self()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := oldAdm.k.WaitConnected(ctx, ns[0].Self().ID); err == nil {
		t.Fatal("the retired cookie still opens a connection")
	}
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
