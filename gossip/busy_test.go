package gossip

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// A call that finds the ring's inbox full is refused at once with
// CodeBusy (before its content is looked at), so the caller can tell a
// busy ring, worth a retry, from an invalid message or a lost one; the
// drop is counted in Stats.InboxDrops. Once the loop drains the inbox,
// calls are processed again.
func TestFullInboxAnsweredBusy(t *testing.T) {
	n := newNode(t, "a").start("ring")
	k := startKernel(t, "caller", 0)
	t.Cleanup(func() { _ = k.Close() })
	if err := k.Connect(n.self()); err != nil {
		t.Fatal(err)
	}

	// Hold the loop, the inbox's only reader, on a queued step; then fill
	// the inbox.
	held, release := make(chan struct{}), make(chan struct{})
	unhold := sync.OnceFunc(func() { close(release) })
	defer unhold() // before the cleanups: Stop waits for the loop
	n.r.later(func() {
		close(held)
		<-release
	})
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the ring's loop did not run the queued step")
	}
	for len(n.r.inbox) < cap(n.r.inbox) {
		n.r.inbox <- kernel.Message{} // not a call: processed without a reply
	}
	drops := n.r.Stats().InboxDrops

	garbage := []byte{0xc1}
	_, err := k.Call(ctx(t), n.self(), handlerName("ring"), garbage)
	if !errors.Is(err, &kernel.RemoteError{Code: CodeBusy}) {
		t.Fatalf("call to a full inbox: %v, want a RemoteError %s", err, CodeBusy)
	}
	if got := n.r.Stats().InboxDrops; got != drops+1 {
		t.Fatalf("InboxDrops = %d, want %d", got, drops+1)
	}

	unhold()
	testutil.WaitFor(t, "the loop to drain the inbox", func() bool { return len(n.r.inbox) == 0 })
	_, err = k.Call(ctx(t), n.self(), handlerName("ring"), garbage)
	if !errors.Is(err, &kernel.RemoteError{Code: CodeInvalidMessage}) {
		t.Fatalf("the same call once the loop runs: %v, want a RemoteError %s", err, CodeInvalidMessage)
	}
}
