package conflux

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/notp-go/notp/internal/lifecycle"
	"github.com/notp-go/notp/kernel"
)

// Proto is the kernel protocol byte of Raft connections. Protocol bytes
// are append-only: a byte once assigned to a protocol is never reused.
const Proto byte = 'R'

// Raft connections are kernel authenticated streams (kernel.DialAuth)
// with protocol byte Proto. Several groups share one listener per kernel:
// after the authentication, the dialer names the group with one frame,
// u8 length | name.
const muxPrefaceTimeout = 5 * time.Second

// muxes holds one Raft listener per kernel, shared by that kernel's
// groups. A kernel accepts only one listener per protocol byte, so the
// groups must share it; the entry goes away with its last group.
var muxes struct {
	mu sync.Mutex
	m  map[*kernel.Kernel]*mux
}

type mux struct {
	k      *kernel.Kernel
	ln     net.Listener
	groups map[string]*streamLayer
	sem    chan struct{}
	wg     sync.WaitGroup
}

// joinMux registers a group's stream layer on k's Raft listener.
func joinMux(k *kernel.Kernel, name string) (*streamLayer, error) {
	muxes.mu.Lock()
	defer muxes.mu.Unlock()
	if muxes.m == nil {
		muxes.m = map[*kernel.Kernel]*mux{}
	}
	m := muxes.m[k]
	if m == nil {
		ln, err := k.ListenAuth(Proto)
		if err != nil {
			return nil, fmt.Errorf("conflux: raft listener: %w", err)
		}
		m = &mux{k: k, ln: ln, groups: map[string]*streamLayer{}, sem: make(chan struct{}, 16)}
		muxes.m[k] = m
		m.wg.Add(1)
		go m.acceptLoop()
	}
	if m.groups[name] != nil {
		return nil, fmt.Errorf("%w: group %q already runs on this node", ErrInvalidConfig, name)
	}
	l := &streamLayer{k: k, name: name, m: m, ch: make(chan net.Conn), done: make(chan struct{})}
	m.groups[name] = l
	return l, nil
}

// leave unregisters l; the last group closes the listener.
func (m *mux) leave(l *streamLayer) {
	muxes.mu.Lock()
	delete(m.groups, l.name)
	last := len(m.groups) == 0
	if last {
		delete(muxes.m, m.k)
	}
	muxes.mu.Unlock()
	if last {
		m.ln.Close()
		m.wg.Wait()
	}
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		select {
		case m.sem <- struct{}{}:
		default:
			c.Close() // too many prefaces in progress
			continue
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// route reads c's group preface and hands c to that group's layer.
func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	defer func() { <-m.sem }()
	c.SetReadDeadline(time.Now().Add(muxPrefaceTimeout))
	var n [1]byte
	if _, err := io.ReadFull(c, n[:]); err != nil || n[0] == 0 || int(n[0]) > MaxNameLen {
		c.Close()
		return
	}
	name := make([]byte, n[0])
	if _, err := io.ReadFull(c, name); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	muxes.mu.Lock()
	l := m.groups[string(name)]
	muxes.mu.Unlock()
	if l == nil {
		c.Close()
		return
	}
	t := time.NewTimer(muxPrefaceTimeout)
	defer t.Stop()
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	case <-t.C:
		c.Close()
	}
}

// streamLayer is one group's raft.StreamLayer over the kernel's port.
type streamLayer struct {
	k    *kernel.Kernel
	name string
	m    *mux
	ch   chan net.Conn
	done chan struct{}
	once sync.Once

	// conns are the group's open connections, accepted and dialled: Close
	// closes them, so a peer replicating to a stopped store sees its
	// connection end at once instead of writing into one nobody reads.
	connMu sync.Mutex
	conns  map[*trackedConn]struct{}
}

// trackedConn is a connection of a streamLayer, forgotten when closed.
type trackedConn struct {
	net.Conn
	l    *streamLayer
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.connMu.Lock()
		delete(c.l.conns, c)
		c.l.connMu.Unlock()
	})
	return c.Conn.Close()
}

// track registers c, or closes it if the layer is already closed.
func (l *streamLayer) track(c net.Conn) (net.Conn, error) {
	t := &trackedConn{Conn: c, l: l}
	l.connMu.Lock()
	defer l.connMu.Unlock()
	select {
	case <-l.done:
		c.Close()
		return nil, net.ErrClosed
	default:
	}
	if l.conns == nil {
		l.conns = make(map[*trackedConn]struct{})
	}
	l.conns[t] = struct{}{}
	return t, nil
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// Dial opens an authenticated stream to the node at address for this
// group.
func (l *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := context.AfterFunc(lifecycle.DoneContext(l.done), cancel)
	defer stop()
	c, err := l.k.DialAuth(ctx, string(address), Proto)
	if err != nil {
		return nil, err
	}
	pre := append([]byte{byte(len(l.name))}, l.name...)
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(pre); err != nil {
		c.Close()
		return nil, fmt.Errorf("conflux: raft dial %s: %w", address, err)
	}
	c.SetWriteDeadline(time.Time{})
	return l.track(c)
}

// Accept returns the next Raft connection for this group.
func (l *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return l.track(c)
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, leaves the kernel's Raft listener and closes
// the group's open connections.
func (l *streamLayer) Close() error {
	l.once.Do(func() {
		l.connMu.Lock()
		close(l.done)
		conns := l.conns
		l.conns = nil
		l.connMu.Unlock()
		for c := range conns {
			c.Conn.Close()
		}
		l.m.leave(l)
	})
	return nil
}

// Addr is this node's advertised address (what peers dial).
func (l *streamLayer) Addr() net.Addr { return advertised(l.k.Self().Addr()) }

type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }
