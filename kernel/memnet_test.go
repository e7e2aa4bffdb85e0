package kernel

import (
	"context"
	"fmt"
	"net"
	"sync"
	"syscall"
	"testing"

	"github.com/notp-go/notp"
)

// memNet is an in-memory network for kernels of one test, plugged in
// through Config.Listen and Config.Dial: a dial is a net.Pipe handed to the
// listener of its address. Unlike sockets, pipes block durably, so kernels
// on a memNet run inside a testing/synctest bubble, where timers fire on
// the bubble's fake clock as soon as every goroutine waits.
type memNet struct {
	mu    sync.Mutex
	ls    map[string]*memListener
	port  int
	dials map[string]int // dial attempts by address, refused ones included
}

func newMemNet() *memNet {
	return &memNet{ls: make(map[string]*memListener), dials: make(map[string]int), port: 7000}
}

// config returns a kernel config on n, opt applied. Busy polling is off:
// a polling reader spins on the clock, which stands still in a bubble
// while any goroutine runs.
func (n *memNet) config(t testing.TB, opt func(*Config)) Config {
	cfg := testConfig(t)
	n.mu.Lock()
	n.port++
	cfg.Node = notp.Node{ID: cfg.Node.ID, Host: "mem", Port: n.port}
	n.mu.Unlock()
	cfg.Listen, cfg.Dial = n.listen, n.dial
	cfg.BusyPoll = BusyPollOff
	if opt != nil {
		opt(&cfg)
	}
	return cfg
}

// start starts a kernel on n, closed at cleanup.
func (n *memNet) start(t testing.TB, opt func(*Config)) *Kernel {
	t.Helper()
	k, err := New(n.config(t, opt))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// pair starts two kernels on n, a linked to b.
func (n *memNet) pair(t testing.TB, opt func(*Config)) (a, b *Kernel) {
	t.Helper()
	a, b = n.start(t, opt), n.start(t, opt)
	if err := a.Connect(b.Self()); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitConnected(context.Background(), b.Self().ID); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// dialsTo returns the number of dials to node so far.
func (n *memNet) dialsTo(node notp.Node) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dials[node.Addr()]
}

func (n *memNet) listen(_ context.Context, _, addr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ls[addr] != nil {
		return nil, fmt.Errorf("memnet: listen %s: %w", addr, syscall.EADDRINUSE)
	}
	l := &memListener{n: n, addr: memAddr(addr), ch: make(chan net.Conn), done: make(chan struct{})}
	n.ls[addr] = l
	return l, nil
}

func (n *memNet) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.dials[addr]++
	l := n.ls[addr]
	n.mu.Unlock()
	refused := &net.OpError{Op: "dial", Net: "mem", Addr: memAddr(addr), Err: syscall.ECONNREFUSED}
	if l == nil {
		return nil, refused
	}
	c, s := net.Pipe()
	select {
	case l.ch <- s:
		return c, nil
	case <-l.done:
		return nil, refused
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// memListener is a listener of a memNet.
type memListener struct {
	n    *memNet
	addr memAddr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() {
		close(l.done)
		l.n.mu.Lock()
		delete(l.n.ls, string(l.addr))
		l.n.mu.Unlock()
	})
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// memAddr is an address on a memNet.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
