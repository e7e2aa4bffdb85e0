package kernel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/notp-go/notp"
)

// Before Start every operation that needs a running kernel fails with
// ErrNotStarted (which is notp.ErrNotStarted too); after Close the same
// operations fail with ErrClosed (notp.ErrClosed), never ErrNotStarted,
// and Start is refused with ErrClosed.
func TestLifecycleErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		peer := n.start(t, nil)
		k, err := New(n.config(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		echo(t, k, "echo")
		ctx := context.Background()
		ops := []struct {
			name string
			run  func() error
		}{
			{"Connect", func() error { return k.Connect(peer.Self()) }},
			{"Call to self", func() error { _, err := k.Call(ctx, k.Self(), "echo", nil); return err }},
			{"Call to a peer", func() error { _, err := k.Call(ctx, peer.Self(), "echo", nil); return err }},
			{"Cast", func() error { return k.Cast(k.Self(), "echo", nil) }},
			{"Ping", func() error { return k.Ping(ctx, peer.Self()) }},
			{"CallStream", func() error {
				r, err := k.CallStream(ctx, k.Self(), "echo", strings.NewReader("x"))
				if err == nil {
					r.Close()
				}
				return err
			}},
			{"Listen", func() error { _, err := k.Listen('x'); return err }},
			{"ListenAuth", func() error { _, err := k.ListenAuth('y'); return err }},
			{"Dial", func() error { _, err := k.Dial(ctx, peer.Self().Addr(), 'x'); return err }},
			{"DialAuth", func() error { _, err := k.DialAuth(ctx, peer.Self().Addr(), 'y'); return err }},
			{"Identify", func() error { _, err := k.Identify(ctx, peer.Self().Addr()); return err }},
		}
		for _, op := range ops {
			err := op.run()
			if !errors.Is(err, ErrNotStarted) || !errors.Is(err, notp.ErrNotStarted) {
				t.Errorf("%s before Start = %v, want ErrNotStarted", op.name, err)
			}
			if errors.Is(err, ErrClosed) {
				t.Errorf("%s before Start = %v, which is ErrClosed too", op.name, err)
			}
		}
		if err := k.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Call(ctx, k.Self(), "echo", []byte("up")); err != nil {
			t.Fatalf("Call after Start: %v", err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		for _, op := range ops {
			err := op.run()
			if !errors.Is(err, ErrClosed) || !errors.Is(err, notp.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", op.name, err)
			}
			if errors.Is(err, ErrNotStarted) {
				t.Errorf("%s after Close = %v, which is ErrNotStarted too", op.name, err)
			}
		}
		if err := k.Start(ctx); !errors.Is(err, ErrClosed) {
			t.Fatalf("Start after Close = %v, want ErrClosed", err)
		}
		if err := k.Close(); err != nil {
			t.Fatalf("second Close = %v, want nil", err)
		}
	})
}

// A kernel closed without ever starting refuses work with ErrClosed, not
// ErrNotStarted: Start can no longer help.
func TestCloseBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		k, err := New(n.config(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Call(context.Background(), k.Self(), "echo", nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Call = %v, want ErrClosed", err)
		}
		if _, err := k.Listen('x'); !errors.Is(err, ErrClosed) {
			t.Fatalf("Listen = %v, want ErrClosed", err)
		}
		if err := k.Start(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Start = %v, want ErrClosed", err)
		}
	})
}
