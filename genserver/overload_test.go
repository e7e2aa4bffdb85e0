package genserver_test

import (
	"context"
	"testing"
	"time"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
)

// One slow actor does not stall the link it shares with others: a message
// for its full mailbox is rejected at once on the connection's reader
// (even with the ignored MailboxWait set), so calls to another actor over
// the same connection still complete promptly and callers of the slow
// actor get CodeOverloaded instead of waiting.
func TestSlowActorDoesNotStallLink(t *testing.T) {
	ka, kb := newPair(t)
	slow := startServer(t, kb, genserver.Config{Name: "slow", MailboxSize: 1, MailboxWait: time.Minute})
	fast := startServer(t, kb, genserver.Config{Name: "fast"})
	fast.Handle("echo", echo)
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow.Handle("block", func(ctx context.Context, _ genserver.Request) ([]byte, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-ctx.Done(): // the test failed and stops the server
		}
		return []byte("ok"), nil
	})
	slowT := genserver.Target{Name: "slow", Node: kb.Self()}
	fastT := genserver.Target{Name: "fast", Node: kb.Self()}
	prompt := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	accepted := make(chan error, 2)
	call := func() {
		_, err := genserver.CallRaw(ctxT(t), ka, slowT, "block", nil)
		accepted <- err
	}
	go call()
	<-entered // the first call is in the handler
	go call()
	testutil.WaitFor(t, "the slow mailbox full", func() bool { return slow.Stats().Queued == 1 })

	// A call into the full mailbox, sent without waiting for its answer,
	// and a cast: neither may hold up what follows on the link.
	overloaded := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := genserver.CallRaw(prompt(), ka, slowT, "block", nil)
		overloaded <- err
	}()
	if err := newServer(t, ka, genserver.Config{}).Cast(slowT, "block", nil); err != nil {
		t.Fatal(err)
	}
	var slowest time.Duration
	for i := range 20 {
		t0 := time.Now()
		got, err := genserver.CallRaw(prompt(), ka, fastT, "echo", []byte{byte(i)})
		if err != nil || len(got) != 1 || got[0] != byte(i) {
			t.Fatalf("call %d to the fast actor = %v, %v", i, got, err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	err := <-overloaded
	wantCode(t, err, genserver.CodeOverloaded)
	t.Logf("CodeOverloaded after %v; slowest of 20 calls to the other actor on the link: %v", time.Since(start), slowest)
	testutil.WaitFor(t, "overloads counted", func() bool { return slow.Stats().Overloaded == 2 })
	close(release)
	for range 2 {
		if err := <-accepted; err != nil {
			t.Fatalf("accepted call failed: %v", err)
		}
	}
}
