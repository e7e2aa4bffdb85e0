package conflux

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/notp-go/notp"
)

// Close stops a running store at once, Raft and storage included; a second
// Close and a Stop after it return nil, and the store then refuses work
// and a new Start with ErrClosed.
func TestCloseStopsAtOnce(t *testing.T) {
	g := newGroup(t, 1, nil)
	s := g.stores[0]
	if _, err := s.Perform(ctxT(t), "add", 1); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10s")
	}
	if !s.isStopped() || s.live.Load() != nil {
		t.Fatal("the store still runs after Close")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Stop(ctxT(t)); err != nil {
		t.Fatalf("Stop after Close = %v", err)
	}
	if _, err := s.Perform(ctxT(t), "add", 1); !errors.Is(err, ErrClosed) || !errors.Is(err, notp.ErrClosed) {
		t.Fatalf("Perform after Close = %v, want ErrClosed", err)
	}
	if err := s.Start(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

// Close and Stop before Start return nil and leave the store closed.
func TestCloseBeforeStart(t *testing.T) {
	n := startNode(t, "n0", nil)
	s, err := New(n, counterConfig(t, nil, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close before Start = %v", err)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after Close = %v", err)
	}
	if err := s.Start(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close = %v, want ErrClosed", err)
	}
}

// New refuses a nil node and an incomplete Config with ErrInvalidConfig,
// the name every package gives its configuration errors.
func TestNewRejectsInvalidConfig(t *testing.T) {
	if _, err := New(nil, counterConfig(t, nil, 1)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New(nil node) = %v, want ErrInvalidConfig", err)
	}
	n := startNode(t, "n0", nil)
	cfg := counterConfig(t, nil, 1)
	cfg.Reduce = nil
	if _, err := New(n, cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New without Reduce = %v, want ErrInvalidConfig", err)
	}
}
