package testutil

import (
	"context"
	"net"
	"sync"
	"testing"
)

// IdleListen is a kernel.Config.Listen that opens no socket: its listener
// never accepts, and its Accept returns net.ErrClosed once it is closed.
// A kernel for local work inside a testing/synctest bubble needs it, since
// a real socket's Accept is not a durable block and would keep the
// bubble's clock from moving.
func IdleListen(context.Context, string, string) (net.Listener, error) {
	return &idleListener{done: make(chan struct{})}, nil
}

type idleListener struct {
	once sync.Once
	done chan struct{}
}

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// SilentServer is a TCP server on loopback that accepts connections and
// never reads or writes them, so a dial to it completes while any
// handshake over the connection stays in progress: the peer for tests of
// dial and handshake timeouts.
type SilentServer struct {
	ln   net.Listener
	done chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

// NewSilentServer starts a SilentServer on 127.0.0.1 (a free port); it
// and the connections it accepted are closed at t's cleanup.
func NewSilentServer(t testing.TB) *SilentServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testutil: silent server: %v", err)
	}
	s := &SilentServer{ln: ln, done: make(chan struct{})}
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *SilentServer) accept() {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
	}
}

func (s *SilentServer) close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

// Addr is the server's address (a *net.TCPAddr).
func (s *SilentServer) Addr() net.Addr { return s.ln.Addr() }

// Accepted is how many connections the server has accepted.
func (s *SilentServer) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
