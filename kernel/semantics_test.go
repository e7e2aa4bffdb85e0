package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
)

func TestNewValidation(t *testing.T) {
	if _, err := New(Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}}); !errors.Is(err, ErrInsecure) {
		t.Fatalf("empty cookie: %v", err)
	}
	if _, err := New(Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Insecure: true}); err != nil {
		t.Fatalf("explicit insecure: %v", err)
	}
	if _, err := New(Config{Cookie: testCookie}); !errors.Is(err, notp.ErrInvalidNode) {
		t.Fatalf("empty id: %v", err)
	}
}

// An empty cookie needs explicit insecure mode, so nobody runs without
// authentication by mistake, and two insecure kernels still exchange hellos.
func TestInsecureMode(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, func(c *Config) { c.Cookie, c.Insecure = "", true })
	echo(t, b, "echo")
	if got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("x")); err != nil || string(got) != "x" {
		t.Fatalf("insecure Call = %q, %v", got, err)
	}
}

func TestRegister(t *testing.T) {
	k := startKernel(t, nil)
	h := HandlerFunc(func(Message) {})
	if err := k.Register("a", h); err != nil {
		t.Fatal(err)
	}
	if err := k.Register("a", h); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("duplicate: %v", err)
	}
	for _, n := range []string{"", "$ring", "_kernel"} {
		if err := k.Register(n, h); !errors.Is(err, ErrReservedName) {
			t.Fatalf("Register(%q) = %v", n, err)
		}
	}
	k.Unregister("a")
	if err := k.Register("a", h); err != nil {
		t.Fatalf("re-register: %v", err)
	}
}

// Self targets are local.
func TestLocal(t *testing.T) {
	k := startKernel(t, nil)
	echo(t, k, "echo")
	in := []byte("abc")
	got, err := k.Call(ctxT(t), k.Self(), "echo", in)
	if err != nil || string(got) != "abc" {
		t.Fatalf("local Call = %q, %v", got, err)
	}
	got[0] = 'X'
	if string(in) != "abc" {
		t.Fatal("local call shares the payload")
	}
	if err := k.Ping(ctxT(t), k.Self()); err != nil {
		t.Fatal(err)
	}
	if !k.Connected(k.Self().ID) || k.Connect(k.Self()) != nil || len(k.Peers()) != 0 {
		t.Fatal("self is not connected implicitly")
	}
	var m Message
	k.Register("sink", HandlerFunc(func(x Message) { m = x }))
	k.Cast(k.Self(), "sink", []byte("c"))
	if string(m.Data) != "c" || m.From.Node != k.Self() {
		t.Fatalf("local cast = %+v", m)
	}
}

func TestReplyError(t *testing.T) {
	a, b := pair(t, false, nil)
	b.Register("fail", HandlerFunc(func(m Message) {
		b.ReplyError(m.From, Errorf("NOT_FOUND", "no %s", m.Data))
	}))
	b.Register("plain", HandlerFunc(func(m Message) { b.ReplyError(m.From, errors.New("plain")) }))
	b.Register("coded", HandlerFunc(func(m Message) {
		b.ReplyError(m.From, fmt.Errorf("wrapped: %w", codedError{}))
	}))
	_, err := a.Call(ctxT(t), b.Self(), "fail", []byte("key"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "NOT_FOUND" || re.Message != "no key" || re.Node.ID != b.Self().ID {
		t.Fatalf("remote error: %v", err)
	}
	if _, err := a.Call(ctxT(t), b.Self(), "plain", nil); !errors.As(err, &re) || re.Message != "plain" || re.Code != "" {
		t.Fatalf("plain error: %v", err)
	}
	// An error with a Code method anywhere in its chain lends its code.
	_, err = a.Call(ctxT(t), b.Self(), "coded", nil)
	if !errors.Is(err, &RemoteError{Code: "INVALID_TYPE"}) || !errors.As(err, &re) || re.Message != "wrapped: coded" {
		t.Fatalf("coded error: %v", err)
	}
}

// codedError is an error that carries its own code, as table's type errors do.
type codedError struct{}

func (codedError) Error() string { return "coded" }
func (codedError) Code() string  { return "INVALID_TYPE" }

// Replying to a cast fails; deferred replies work.
func TestDeferredReply(t *testing.T) {
	a, b := pair(t, false, nil)
	froms := make(chan From, 2)
	b.Register("later", HandlerFunc(func(m Message) { froms <- m.From }))
	a.Cast(b.Self(), "later", nil)
	if err := b.Reply(<-froms, nil); !errors.Is(err, ErrNoReplyTag) {
		t.Fatalf("reply to cast: %v", err)
	}
	done := make(chan []byte)
	go func() {
		got, _ := a.Call(ctxT(t), b.Self(), "later", nil)
		done <- got
	}()
	from := <-froms
	if err := b.Reply(from, []byte("deferred")); err != nil {
		t.Fatal(err)
	}
	if got := <-done; string(got) != "deferred" {
		t.Fatalf("deferred reply = %q", got)
	}
}

// MultiCall keeps node order; first error in node order.
func TestMultiCallAbcast(t *testing.T) {
	a, b := pair(t, false, nil)
	c := startKernel(t, nil)
	connect(t, a, c)
	for _, k := range []*Kernel{a, b, c} {
		k.Register("id", HandlerFunc(func(m Message) { k.Reply(m.From, []byte(k.Self().ID)) }))
	}
	nodes := []notp.Node{c.Self(), a.Self(), b.Self()}
	res, err := a.MultiCall(ctxT(t), nodes, "id", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Node != nodes[i] || string(r.Data) != nodes[i].ID {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	ghost := notp.Node{ID: "ghost", Host: "127.0.0.1", Port: 1}
	res, err = a.MultiCall(ctxT(t), []notp.Node{b.Self(), ghost}, "id", nil)
	if !errors.Is(err, ErrUnknownNode) || string(res[0].Data) != b.Self().ID {
		t.Fatalf("MultiCall with ghost = %+v, %v", res, err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	for _, k := range []*Kernel{b, c} {
		k.Register("ab", HandlerFunc(func(m Message) { mu.Lock(); seen[k.Self().ID] = true; mu.Unlock() }))
	}
	err = a.Abcast([]notp.Node{b.Self(), ghost, c.Self()}, "ab", nil)
	if !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Abcast err = %v", err)
	}
	waitFor(t, "abcast delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 2 })
}

// Replies travel over the inbound connection: b has no link to a.
func TestReplyWithoutReverseLink(t *testing.T) {
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	if b.Connected(a.Self().ID) {
		t.Fatal("b unexpectedly has a link to a")
	}
	for range 10 {
		if _, err := a.Call(ctxT(t), b.Self(), "echo", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Ping(ctxT(t), b.Self()); err != nil {
		t.Fatal(err)
	}
}

// A reply tag answered by another node is an ErrInvalidReply.
func TestInvalidReply(t *testing.T) {
	a, b := pair(t, false, nil)
	c := startKernel(t, nil)
	connect(t, c, a)
	b.Register("fwd", HandlerFunc(func(m Message) {
		// c answers a's call to b: From with c's own route to a.
		go c.Reply(From{Node: a.Self(), Tag: m.From.Tag}, []byte("forged"))
	}))
	_, err := a.Call(ctxT(t), b.Self(), "fwd", nil)
	if !errors.Is(err, ErrInvalidReply) {
		t.Fatalf("Call = %v, want ErrInvalidReply", err)
	}
}

func TestCloseWithPendingCalls(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	got := make(chan struct{}, 4)
	b.Register("hold", HandlerFunc(func(Message) { got <- struct{}{} }))
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := a.Call(context.Background(), b.Self(), "hold", nil)
			errs <- err
		}()
	}
	for range 4 {
		<-got
	}
	a.Close()
	for range 4 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("pending call after Close: %v", err)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := a.Call(ctxT(t), b.Self(), "hold", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
	if err := a.Cast(b.Self(), "hold", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Cast after Close: %v", err)
	}
}

// Queue while connecting, FIFO flush, drop oldest; reconnect after the peer
// restarts on the same port.
func TestReconnectQueueFIFO(t *testing.T) {
	checkLeaks(t)
	opt := func(c *Config) {
		c.ReconnectMin, c.ReconnectMax, c.QueueLen = 5*time.Millisecond, 20*time.Millisecond, 5
	}
	a, b := pair(t, false, opt)
	node := b.Self()
	b.Close()
	waitFor(t, "link down", func() bool { return !a.Connected(node.ID) })
	for i := range 8 {
		if err := a.Cast(node, "q", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if d := a.Stats().QueueDrops; d != 3 {
		t.Fatalf("QueueDrops = %d, want 3", d)
	}
	var got []byte
	var mu sync.Mutex
	cfg := testConfig(t)
	opt(&cfg)
	cfg.Node = node
	b2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b2.Register("q", HandlerFunc(func(m Message) { mu.Lock(); got = append(got, m.Data...); mu.Unlock() }))
	if err := b2.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	waitFor(t, "queued casts", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 5 })
	if !bytes.Equal(got, []byte{3, 4, 5, 6, 7}) {
		t.Fatalf("delivered %v, want oldest dropped and FIFO", got)
	}
	if a.Stats().Reconnects < 1 {
		t.Fatal("reconnect not counted")
	}
}

// Disconnect removes the link; sending then gives ErrUnknownNode; graceful
// disconnect drains.
func TestDisconnect(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	var n int
	var mu sync.Mutex
	b.Register("c", HandlerFunc(func(Message) { mu.Lock(); n++; mu.Unlock() }))
	for range 100 {
		a.Cast(b.Self(), "c", make([]byte, 1000))
	}
	if err := a.Disconnect(ctxT(t), b.Self().ID, false); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "drained casts", func() bool { mu.Lock(); defer mu.Unlock(); return n == 100 })
	if a.Connected(b.Self().ID) || len(a.Peers()) != 0 {
		t.Fatal("still connected")
	}
	if err := a.Cast(b.Self(), "c", nil); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("Cast after disconnect = %v", err)
	}
	if err := a.Disconnect(ctxT(t), "nobody", true); err != nil {
		t.Fatal(err)
	}
}

func TestStreams(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	big := bytes.Repeat([]byte("stream!"), 700_000) // ~4.9 MB
	b.Register("stream", HandlerFunc(func(m Message) {
		go b.ReplyStream(context.Background(), m.From, bytes.NewReader(m.Data))
	}))
	r, err := a.CallStream(ctxT(t), b.Self(), "stream", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Collect(r, 0)
	r.Close()
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("CallStream = %d bytes, %v", len(got), err)
	}
	// A streamed reply is collected by Call.
	if got, err := a.Call(ctxT(t), b.Self(), "stream", big); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Call of streamed reply = %d bytes, %v", len(got), err)
	}
	// A body that fails ends the stream; the receiver drops it.
	r, err = a.CallStream(ctxT(t), b.Self(), "stream", io.MultiReader(bytes.NewReader(big), errReader{}))
	if err == nil {
		r.Close()
		t.Fatal("CallStream with failing body succeeded")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// A call stream over MaxStreamSize is refused with CodeBufferLimit (its
// idle timeout is tested in TestStreamIdleTimeout).
func TestStreamLimits(t *testing.T) {
	a, b := pair(t, false, func(c *Config) { c.MaxStreamSize = 200_000 })
	echo(t, b, "echo")
	_, err := a.Call(ctxT(t), b.Self(), "echo", make([]byte, 300_000))
	if !errors.Is(err, &RemoteError{Code: CodeBufferLimit}) {
		t.Fatalf("over-limit stream: %v", err)
	}
	if n := b.Stats().StreamsAborted; n != 1 {
		t.Fatalf("Stats.StreamsAborted = %d, want 1", n)
	}
	if _, err := Collect(strings.NewReader("12345"), 4); !errors.Is(err, ErrBufferLimit) {
		t.Fatalf("Collect over limit: %v", err)
	}
}

// A slow CallStream reader does not block other calls on the connection.
func TestSlowStreamReader(t *testing.T) {
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	big := make([]byte, 3<<20)
	b.Register("big", HandlerFunc(func(m Message) {
		go b.ReplyStream(context.Background(), m.From, bytes.NewReader(big))
	}))
	r, err := a.CallStream(ctxT(t), b.Self(), "big", strings.NewReader("go"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Read(make([]byte, 10)) // then stop reading
	for i := range 20 {
		if _, err := a.Call(ctxT(t), b.Self(), "echo", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
}
