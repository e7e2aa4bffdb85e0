package genserver_test

import (
	"context"
	"sync"
	"testing"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
)

// A remote peer's requests waiting in a mailbox are charged to the
// peer's connection budget (kernel.Message.Hold) until the actor takes
// them; requests the mailbox refuses give their charge back at once.
func TestMailboxHoldsBudget(t *testing.T) {
	testutil.CheckLeaks(t)
	k1, k2 := newPair(t)
	remote := startServer(t, k2, genserver.Config{Name: "svc", MailboxSize: 4, MailboxWait: -1})
	gate := make(chan struct{})
	open := sync.OnceFunc(func() { close(gate) })
	t.Cleanup(open) // before the server's stop, which waits for the handler
	started := make(chan struct{}, 1)
	remote.Handle("slow", func(context.Context, genserver.Request) ([]byte, error) {
		select {
		case started <- struct{}{}:
		default:
		}
		<-gate
		return nil, nil
	})
	client := newServer(t, k1, genserver.Config{})
	target := genserver.Target{Name: "svc", Node: k2.Self()}
	const size = 64 << 10
	if err := client.Cast(target, "slow", make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	<-started // the actor is busy with the first cast
	for range 10 {
		if err := client.Cast(target, "slow", make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, "casts delivered", func() bool {
		st := remote.Stats()
		return st.Received == 11
	})
	held := k2.Stats().HeldBytes
	if held < 4*size || held > 5*size {
		t.Fatalf("HeldBytes %d with 4 requests of %d bytes queued", held, size)
	}
	open()
	testutil.WaitFor(t, "every charge given back", func() bool { return k2.Stats().HeldBytes == 0 })
}
