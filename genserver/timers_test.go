package genserver_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/kernel"
)

// The timer-driven paths of genserver (call timeouts, stops with a
// deadline, mailboxes that must not wait) run inside a testing/synctest
// bubble, on a fake clock that jumps to the next timer as soon as every
// goroutine waits: the tests check times to the nanosecond and take none.

// idleListener is a listener that never accepts: a kernel for local actors
// needs no network, and a real socket's Accept would keep the bubble's
// clock from moving (it is not a durable block).
type idleListener struct{ done chan struct{} }

func (l idleListener) Accept() (net.Conn, error) { <-l.done; return nil, net.ErrClosed }
func (l idleListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}
func (l idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// localKernel starts a kernel without a network, for local actors inside
// a synctest bubble; closed at cleanup. kcfg adjusts its config.
func localKernel(t *testing.T, kcfg func(*kernel.Config)) *kernel.Kernel {
	t.Helper()
	cfg := kernel.Config{
		Node:     notp.Node{ID: fmt.Sprintf("local%d", kernelSeq.Add(1)), Host: "127.0.0.1", Port: 1},
		Insecure: true, // no peers
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Listen: func(context.Context, string, string) (net.Listener, error) {
			return idleListener{done: make(chan struct{})}, nil
		},
	}
	if kcfg != nil {
		kcfg(&cfg)
	}
	k, err := kernel.New(cfg)
	if err != nil {
		t.Fatalf("kernel.New: %v", err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("kernel.Start: %v", err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// Config.CallTimeout bounds a Call whose ctx has no deadline, to the
// nanosecond; without it the kernel's CallTimeout applies; a ctx deadline
// wins over both.
func TestCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := localKernel(t, func(c *kernel.Config) { c.CallTimeout = time.Minute })
		never := func(context.Context, genserver.Request) ([]byte, error) { return nil, genserver.NoReply }
		s := startServer(t, k, genserver.Config{Name: "silent", CallTimeout: 50 * time.Millisecond})
		s.Handle("never", never)
		d := startServer(t, k, genserver.Config{Name: "default"})
		d.Handle("never", never)
		call := func(s *genserver.Server, ctx context.Context, name string) (time.Duration, error) {
			start := time.Now()
			_, err := s.Call(ctx, genserver.Target{Name: name}, "never", nil)
			return time.Since(start), err
		}
		for _, tc := range []struct {
			name string
			s    *genserver.Server
			ctx  func() (context.Context, context.CancelFunc)
			want time.Duration
		}{
			{"server's CallTimeout", s, func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }, 50 * time.Millisecond},
			{"kernel's CallTimeout", d, func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }, time.Minute},
			{"ctx deadline", s, func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 20*time.Millisecond)
			}, 20 * time.Millisecond},
		} {
			ctx, cancel := tc.ctx()
			took, err := call(tc.s, ctx, tc.s.Name())
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) || took != tc.want {
				t.Errorf("%s: %v after %v, want DeadlineExceeded after %v", tc.name, err, took, tc.want)
			}
		}
	})
}

// A full mailbox rejects at once, even with the (ignored) MailboxWait set:
// the overloaded call takes no time at all, and the accepted ones complete
// once the handler is released.
func TestMailboxFullRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := localKernel(t, nil)
		s := startServer(t, k, genserver.Config{Name: "small", MailboxSize: 1, MailboxWait: time.Minute})
		release := make(chan struct{})
		s.Handle("block", func(context.Context, genserver.Request) ([]byte, error) {
			<-release
			return []byte("ok"), nil
		})
		ctx := context.Background()
		target := genserver.Target{Name: "small"}
		results := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := s.Call(ctx, target, "block", nil)
				results <- err
			}()
			synctest.Wait() // the first in the handler, the second queued
		}
		if n := s.Stats().Queued; n != 1 {
			t.Fatalf("Stats.Queued = %d, want 1", n)
		}
		start := time.Now()
		_, err := s.Call(ctx, target, "block", nil)
		if took := time.Since(start); took != 0 {
			t.Fatalf("a call to a full mailbox waited %v", took)
		}
		wantCode(t, err, genserver.CodeOverloaded)
		if err := s.Cast(target, "block", nil); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := s.Stats().Overloaded; n != 2 {
			t.Fatalf("Stats.Overloaded = %d, want 2", n)
		}
		close(release)
		for range 2 {
			if err := <-results; err != nil {
				t.Fatalf("accepted call failed: %v", err)
			}
		}
	})
}

// Stop drains the mailbox until its ctx ends: a drain that would outlast
// the deadline is forced at the deadline exactly, the running handler's
// ctx is cancelled and queued callers get CodeStopped.
func TestStopForcedAtDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := localKernel(t, nil)
		s := startServer(t, k, genserver.Config{Name: "slow"})
		s.Handle("work", func(hctx context.Context, _ genserver.Request) ([]byte, error) {
			select {
			case <-time.After(time.Hour):
				return []byte("done"), nil
			case <-hctx.Done():
				return nil, hctx.Err()
			}
		})
		results := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := s.Call(context.Background(), genserver.Target{Name: "slow"}, "work", nil)
				results <- err
			}()
			synctest.Wait()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop = %v, want DeadlineExceeded", err)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Fatalf("Stop took %v, want its ctx's 3 s", took)
		}
		var stopped, cancelled int
		for range 2 {
			err := <-results
			var re *kernel.RemoteError
			switch {
			case errors.Is(err, &kernel.RemoteError{Code: genserver.CodeStopped}):
				stopped++
			case errors.As(err, &re) && re.Message == context.Canceled.Error():
				cancelled++
			default:
				t.Fatalf("call during the forced stop: %v", err)
			}
		}
		if stopped != 1 || cancelled != 1 {
			t.Fatalf("%d stopped, %d cancelled; want 1 and 1", stopped, cancelled)
		}
	})
}
