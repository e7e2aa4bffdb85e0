package kernel

import (
	"context"
	"errors"
	"github.com/notp-go/notp/internal/testutil"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// The protocol mux (Kernel.Listen and Kernel.Dial) is the extension point
// for other protocols on the node's port; these tests cover its error
// paths and its budgets, on a memNet inside synctest bubbles.

// Listen refuses the kernel's own protocol, a protocol already listened
// for, and kernels not running; a protocol is free again once its
// listener closes, and the kernel's Close closes every listener.
func TestListenErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		idle, err := New(n.config(t, nil))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := idle.Listen('R'); !errors.Is(err, ErrNotStarted) {
			t.Fatalf("Listen before Start = %v, want ErrNotStarted", err)
		}
		k := n.start(t, nil)
		if _, err := k.Listen(ProtoKernel); err == nil || errors.Is(err, ErrClosed) {
			t.Fatalf("Listen(ProtoKernel) = %v, want a refusal", err)
		}
		ln, err := k.Listen('R')
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.Listen('R'); err == nil {
			t.Fatal("a second Listen for the same protocol succeeded")
		}
		if ln.Addr().String() != k.Addr().String() {
			t.Fatalf("listener address %v, want the kernel's %v", ln.Addr(), k.Addr())
		}
		ln.Close()
		ln.Close() // idempotent
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close = %v, want net.ErrClosed", err)
		}
		ln2, err := k.Listen('R')
		if err != nil {
			t.Fatalf("Listen after the old listener closed: %v", err)
		}
		accepted := make(chan error, 1)
		go func() { _, err := ln2.Accept(); accepted <- err }()
		synctest.Wait()
		k.Close()
		if err := <-accepted; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept across the kernel's Close = %v, want net.ErrClosed", err)
		}
		if _, err := k.Listen('S'); !errors.Is(err, ErrClosed) {
			t.Fatalf("Listen after Close = %v, want ErrClosed", err)
		}
	})
}

// A connection is handed to its protocol's listener, which then owns it:
// the kernel releases its pending slot. A connection nobody accepts within
// HandshakeTimeout is closed at that timeout exactly, and one with an
// unknown protocol byte at once; both are counted.
func TestProtocolHandover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 2 * time.Second
		n := newMemNet()
		a := n.start(t, nil)
		b := n.start(t, func(c *Config) { c.HandshakeTimeout = timeout })
		ln, err := b.Listen('R')
		if err != nil {
			t.Fatal(err)
		}
		// Nobody accepts yet: the connection waits, holding a pending
		// slot, until the timeout.
		c, err := a.Dial(context.Background(), b.Self().Addr(), 'R')
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if p := b.Stats().PendingConnections; p != 1 {
			t.Fatalf("PendingConnections = %d while the connection waits for Accept, want 1", p)
		}
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read from an unaccepted connection = %v, want EOF", err)
		}
		if took := time.Since(start); took != timeout {
			t.Fatalf("unaccepted connection closed after %v, want HandshakeTimeout %v", took, timeout)
		}
		synctest.Wait() // the connection's goroutine gives its slot back
		if p := b.Stats().PendingConnections; p != 0 {
			t.Fatalf("PendingConnections = %d after the timeout, want 0", p)
		}
		// Accepted: the slot is released and the listener's owner has
		// the connection, past HandshakeTimeout too.
		c, err = a.Dial(context.Background(), b.Self().Addr(), 'R')
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if p := b.Stats().PendingConnections; p != 0 {
			t.Fatalf("PendingConnections = %d after Accept, want 0", p)
		}
		time.Sleep(2 * timeout)
		go c.Write([]byte("late"))
		got := make([]byte, 4)
		if _, err := io.ReadFull(s, got); err != nil || string(got) != "late" {
			t.Fatalf("accepted connection after 2×HandshakeTimeout: %q, %v", got, err)
		}
		c.Close()
		s.Close()
		// An unknown protocol byte: closed at once.
		c, err = a.Dial(context.Background(), b.Self().Addr(), 'Z')
		if err != nil {
			t.Fatal(err)
		}
		start = time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF || time.Since(start) != 0 {
			t.Fatalf("unknown protocol: read = %v after %v, want EOF at once", err, time.Since(start))
		}
		synctest.Wait()
		if st := b.Stats(); st.RejectedUnknownProto != 1 || st.PendingConnections != 0 {
			t.Fatalf("RejectedUnknownProto %d, PendingConnections %d; want 1 and 0", st.RejectedUnknownProto, st.PendingConnections)
		}
	})
}

// A connection that sends no protocol byte is closed at HandshakeTimeout
// and counted with the unknown protocols.
func TestSilentConnectionTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const timeout = 3 * time.Second
		n := newMemNet()
		b := n.start(t, func(c *Config) { c.HandshakeTimeout = timeout })
		c, err := n.dial(context.Background(), "tcp", b.Self().Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read = %v, want EOF", err)
		}
		if took := time.Since(start); took != timeout {
			t.Fatalf("silent connection closed after %v, want %v", took, timeout)
		}
		synctest.Wait()
		if st := b.Stats(); st.RejectedUnknownProto != 1 || st.PendingConnections != 0 {
			t.Fatalf("RejectedUnknownProto %d, PendingConnections %d; want 1 and 0", st.RejectedUnknownProto, st.PendingConnections)
		}
	})
}

// Dial's errors name the address and wrap the cause: a refused dial, and
// a peer that does not read the protocol byte before the ctx deadline.
func TestDialErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := newMemNet()
		a := n.start(t, nil)
		_, err := a.Dial(context.Background(), "mem:1", 'R')
		if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "kernel: dial mem:1") {
			t.Fatalf("dial to nobody = %v, want a kernel error wrapping ECONNREFUSED", err)
		}
		// A listener that accepts and never reads: the protocol byte
		// cannot be written (a pipe buffers nothing), and the ctx's
		// deadline ends the write.
		ln, err := n.listen(context.Background(), "tcp", "mem:2")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err = a.Dial(ctx, "mem:2", 'R')
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("dial to a peer that does not read = %v after %v, want a deadline error after 1 s", err, time.Since(start))
		}
		(<-accepted).Close()
		a.Close()
		if _, err := n.dial(context.Background(), "tcp", a.Self().Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a closed kernel = %v, want ECONNREFUSED", err)
		}
	})
}

// Warnings about rejected connections are logged at most once a second,
// so a flood of junk connections cannot flood the log; they are all
// counted.
func TestRejectionWarningsRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs testutil.SyncBuffer
		n := newMemNet()
		k := n.start(t, func(c *Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			// Every junk connection must reach the protocol byte: none
			// may be turned away by the pending-connection budgets first.
			c.MaxPendingConns, c.MaxPendingPerIP = 1000, 1000
		})
		junk := func(count int) {
			t.Helper()
			for range count {
				c, err := n.dial(context.Background(), "tcp", k.Self().Addr())
				if err != nil {
					t.Fatal(err)
				}
				c.Write([]byte{'Z'})
				c.Close()
			}
			synctest.Wait()
		}
		junk(50)
		if got := strings.Count(logs.String(), "unknown protocol byte"); got != 1 {
			t.Fatalf("%d warnings for 50 junk connections in one instant, want 1", got)
		}
		time.Sleep(time.Second - 1)
		junk(1)
		if got := strings.Count(logs.String(), "unknown protocol byte"); got != 1 {
			t.Fatalf("%d warnings within a second, want 1", got)
		}
		time.Sleep(1)
		junk(1)
		if got := strings.Count(logs.String(), "unknown protocol byte"); got != 2 {
			t.Fatalf("%d warnings after a second, want 2", got)
		}
		if n := k.Stats().RejectedUnknownProto; n != 52 {
			t.Fatalf("RejectedUnknownProto = %d, want 52", n)
		}
	})
}
