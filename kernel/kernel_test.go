package kernel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/notp-go/notp"
)

func TestCallCastLoopback(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("hi"))
	if err != nil || string(got) != "hi" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	casts := make(chan Message, 1)
	b.Register("sink", HandlerFunc(func(m Message) { casts <- m }))
	if err := a.Cast(b.Self(), "sink", []byte("c")); err != nil {
		t.Fatal(err)
	}
	m := <-casts
	if string(m.Data) != "c" || m.From.Node.ID != a.Self().ID || m.From.IsCall() {
		t.Fatalf("cast delivered %+v", m)
	}
	if err := a.Ping(ctxT(t), b.Self()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func TestCallLargeBody(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	big := bytes.Repeat([]byte("0123456789abcdef"), 300_000) // 4.8 MB
	got, err := a.Call(ctxT(t), b.Self(), "echo", big)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Call large = %d bytes, %v", len(got), err)
	}
}

func TestUnknownNameAndNode(t *testing.T) {
	a, b := pair(t, false, nil)
	_, err := a.Call(ctxT(t), b.Self(), "nobody", nil)
	if !errors.Is(err, &RemoteError{Code: CodeUnknownName}) {
		t.Fatalf("Call unknown name: %v", err)
	}
	var re *RemoteError
	if !errors.As(err, &re) || re.Node.ID != b.Self().ID {
		t.Fatalf("RemoteError node: %v", err)
	}
	other := notp.Node{ID: "ghost", Host: "127.0.0.1", Port: 1}
	if _, err := a.Call(ctxT(t), other, "echo", nil); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Call unknown node: %v", err)
	}
	if err := a.Cast(other, "echo", nil); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Cast unknown node: %v", err)
	}
	a.Cast(b.Self(), "nobody", nil)
	waitFor(t, "unknown cast counted", func() bool { return b.Stats().CastsUnknownName == 1 })
}

func TestCallDeadline(t *testing.T) {
	a, b := pair(t, false, nil)
	held := make(chan From, 1)
	b.Register("slow", HandlerFunc(func(m Message) { held <- m.From }))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Call(ctx, b.Self(), "slow", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want deadline", err)
	}
	b.Reply(<-held, []byte("late"))
	waitFor(t, "late reply counted", func() bool { return a.Stats().LateReplies == 1 })
}

// A graceful Disconnect of a link that never connected returns at once
// instead of holding the caller until ctx ends (gossip removes nodes that
// were never reachable this way); a link that was up still drains.
func TestDisconnectNeverConnected(t *testing.T) {
	a := startKernel(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now: the link cannot connect
	ghost := notp.Node{ID: "ghost", Host: "127.0.0.1", Port: port}
	if err := a.Connect(ghost); err != nil {
		t.Fatal(err)
	}
	if err := a.Cast(ghost, "x", []byte("queued")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Disconnect(ctx, ghost.ID, false); err != nil {
		t.Fatalf("Disconnect = %v, want nil at once", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Disconnect waited for ctx")
	}
	if len(a.Peers()) != 0 {
		t.Fatalf("Peers = %v after Disconnect", a.Peers())
	}

	// A link that was up drains and returns nil too.
	b := startKernel(t, nil)
	connect(t, a, b)
	if err := a.Cast(b.Self(), "x", []byte("last")); err != nil {
		t.Fatal(err)
	}
	if err := a.Disconnect(ctx, b.Self().ID, false); err != nil {
		t.Fatalf("Disconnect of a live link = %v", err)
	}
}

// WaitConnected returns once the link is up, and fails fast — with the
// attempt's error, not after ctx — when the peer refuses the connection or
// holds another cookie.
func TestWaitConnected(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startKernel(t, func(c *Config) { c.ReconnectMax = 50 * time.Millisecond })
	b := startKernel(t, nil)
	if err := a.WaitConnected(ctx, b.Self().ID); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("no link: %v, want ErrUnknownNode", err)
	}
	if err := a.WaitConnected(ctx, a.Self().ID); err != nil {
		t.Fatalf("self: %v", err)
	}
	if err := a.Connect(b.Self()); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitConnected(ctx, b.Self().ID); err != nil || !a.Connected(b.Self().ID) {
		t.Fatalf("WaitConnected = %v, connected %v", err, a.Connected(b.Self().ID))
	}

	// Nothing listens: the dial error comes back at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	ghost := notp.Node{ID: "ghost", Host: "127.0.0.1", Port: port}
	a.Connect(ghost)
	err = a.WaitConnected(ctx, ghost.ID)
	var le *LinkError
	var op *net.OpError
	if !errors.As(err, &le) || le.Node != ghost || !errors.As(err, &op) || ctx.Err() != nil {
		t.Fatalf("refused: %v, want a *LinkError wrapping a *net.OpError before ctx ends", err)
	}

	// Another cookie: the handshake error comes back at once.
	c := startKernel(t, func(c *Config) { c.Cookie = "another kernel test cookie" })
	a.Connect(c.Self())
	err = a.WaitConnected(ctx, c.Self().ID)
	if !errors.As(err, &le) || errors.As(err, &op) || ctx.Err() != nil {
		t.Fatalf("wrong cookie: %v, want a handshake *LinkError", err)
	}

	// ctx bounds the wait; a disconnected link is inactive.
	short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancelShort()
	hold, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers the hello
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	silent := notp.Node{ID: "silent", Host: "127.0.0.1", Port: hold.Addr().(*net.TCPAddr).Port}
	a.Connect(silent)
	if err := a.WaitConnected(short, silent.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent peer: %v, want DeadlineExceeded", err)
	}
	a.Disconnect(ctx, silent.ID, true)
	if err := a.WaitConnected(ctx, silent.ID); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("after Disconnect: %v", err)
	}
}
