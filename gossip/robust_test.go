package gossip

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/codec"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// A ring message naming 50 nodes opened 50 kernel links (each dialling a
// node that may not exist); gossip now opens at most MaxLinks ahead of
// need and leaves the rest to the first send.
func TestEagerLinksBounded(t *testing.T) {
	u := newUnit(t, "a")
	u.r.mu.Lock()
	u.r.cfg.MaxLinks = 5
	u.r.testSend = func(notp.Node, []byte) {}
	u.r.mu.Unlock()
	es := make([]codec.Entry, 50)
	for i := range es {
		es[i] = ent(fmt.Sprintf("p%02d", i), 1, "b", false, 1)
		es[i].Node.Port = 1 // nothing listens there
	}
	u.deliver(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"b": 1}), Entries: es})
	if got := len(u.r.View().Nodes()); got != 51 {
		t.Fatalf("ring has %d nodes, want 51", got)
	}
	if got := len(u.k.Peers()); got > 5 {
		t.Fatalf("kernel holds %d links, want at most 5", got)
	}
	if got := u.r.Stats().LinksDeferred; got != 45 {
		t.Fatalf("LinksDeferred = %d, want 45", got)
	}
}

// A panic while the loop handles a message is recovered, logged and
// counted; the lock is released and the next message is handled.
func TestLoopRecoversPanic(t *testing.T) {
	u := newUnit(t, "a")
	var panicked atomic.Bool
	u.r.mu.Lock()
	u.r.testSend = func(notp.Node, []byte) {
		if panicked.CompareAndSwap(false, true) {
			panic("injected send failure")
		}
	}
	u.r.mu.Unlock()
	pull := codec.EncodeMessage(&codec.Message{Type: codec.MsgPull, Ring: "ring"})
	u.r.handle(kernel.Message{Name: handlerName("ring"), From: kernel.From{Node: peer("b", 7001)}, Data: pull})
	testutil.WaitFor(t, "the panic to be recovered", func() bool { return u.r.Stats().Panics == 1 })
	recv := u.r.Stats().MessagesReceived
	u.r.handle(kernel.Message{Name: handlerName("ring"), From: kernel.From{Node: peer("b", 7001)}, Data: pull})
	testutil.WaitFor(t, "the next message", func() bool { return u.r.Stats().MessagesReceived == recv+1 })
	if u.r.RingID() != "ring" { // takes r.mu: not left locked
		t.Fatal("ring id lost")
	}
}

// A panic under r.mu (here in the state merge, through a nil clock that
// decoding never lets through) leaves the lock released.
func TestApplyPanicReleasesLock(t *testing.T) {
	u := newUnit(t, "a")
	u.r.safely("test", func() {
		_, _, _ = u.r.apply(peer("b", 7001), &codec.Message{Type: codec.MsgUpdate, Ring: "ring"})
	})
	if got := u.r.Stats().Panics; got != 1 {
		t.Fatalf("Panics = %d, want 1", got)
	}
	if !u.r.mu.TryLock() {
		t.Fatal("r.mu left locked by the panic")
	}
	u.r.mu.Unlock()
}

// A panic while merging a memberlist push/pull state (on a memberlist
// goroutine, under r.mu) is recovered too, with r.mu released.
func TestPushPullPanicRecovered(t *testing.T) {
	u := newUnit(t, "a")
	u.r.mu.Lock()
	clk := u.r.st.clock
	u.r.st.clock = nil // a state no code path produces: the merge panics
	u.r.mu.Unlock()
	d := &mlDelegate{r: u.r, ringID: "ring"}
	d.MergeRemoteState(codec.EncodeMessage(&codec.Message{Type: codec.MsgUpdate, Ring: "ring",
		Clock: clockOf(map[string]uint64{"b": 1}), Entries: []codec.Entry{ent("b", 1, "b", false, 3)}}), false)
	if got := u.r.Stats().Panics; got != 1 {
		t.Fatalf("Panics = %d, want 1", got)
	}
	if !u.r.mu.TryLock() {
		t.Fatal("r.mu left locked by the panic")
	}
	u.r.st.clock = clk
	u.r.mu.Unlock()
}

// A call carrying a message that does not decode is answered with the
// named code, so the caller can tell a refusal from a lost message.
func TestInvalidCallAnsweredWithCode(t *testing.T) {
	n := newNode(t, "a").start("ring")
	k := startKernel(t, "caller", 0)
	t.Cleanup(func() { _ = k.Close() })
	if err := k.Connect(n.self()); err != nil {
		t.Fatal(err)
	}
	_, err := k.Call(ctx(t), n.self(), handlerName("ring"), []byte{0xc1})
	if !errors.Is(err, &kernel.RemoteError{Code: CodeInvalidMessage}) {
		t.Fatalf("garbage call: %v, want a RemoteError %s", err, CodeInvalidMessage)
	}
}
