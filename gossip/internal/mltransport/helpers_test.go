package mltransport

import (
	"bytes"
	"context"
	"errors"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/internal/testutil/mltest"
	"github.com/notp-go/notp/kernel"
)

// kernelConfig is the configuration of the tests' kernels: node id on
// loopback with a port the OS picks, the cookie strongCookie makes of
// cookie, and an insecure kernel when cookie is "".
func kernelConfig(t testing.TB, id, cookie string) kernel.Config {
	return kernel.Config{
		Node:     notp.Node{ID: id, Host: "127.0.0.1", Port: 0},
		Cookie:   strongCookie(cookie),
		Insecure: cookie == "",
		Logger:   testutil.Logger(t),
	}
}

// strongCookie turns a test's short cookie name into a cookie long enough
// for kernel.New; distinct names stay distinct and "" stays "".
func strongCookie(name string) string {
	if name == "" {
		return ""
	}
	return "mltransport test cookie: " + name
}

// startKernel starts a kernel from cfg, closed at cleanup.
func startKernel(t testing.TB, cfg kernel.Config) *kernel.Kernel {
	t.Helper()
	k, err := kernel.New(cfg)
	if err != nil {
		t.Fatalf("kernel.New: %v", err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatalf("kernel.Start: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// node is a kernel with a transport over it, both closed at cleanup.
type node struct {
	k  *kernel.Kernel
	tr *Transport
}

// newNode starts a kernel and a transport on it. The kernel picks a free
// TCP port; in the rare case the same UDP port is taken, it retries with a
// new kernel, as memberlist's own transport does.
func newNode(t testing.TB, cfg kernel.Config) node {
	t.Helper()
	for range 5 {
		k := startKernel(t, cfg)
		tr, err := New(k, testutil.Logger(t))
		if errors.Is(err, ErrUDPBind) {
			k.Close()
			continue
		}
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { tr.Shutdown() })
		return node{k, tr}
	}
	t.Fatal("no port free for both TCP and UDP")
	return node{}
}

// logSink collects memberlist's log lines; warnings and errors also go to
// t.Log until the test ends (memberlist's goroutines may outlive Shutdown).
type logSink struct {
	t     testing.TB
	mu    sync.Mutex
	done  bool
	lines []string
}

func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, line)
	if !s.done && (strings.Contains(line, "[ERR]") || strings.Contains(line, "[WARN]")) {
		s.t.Log(line)
	}
	return len(p), nil
}

// contains reports whether a logged line contains sub.
func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// member is a node running memberlist over its transport.
type member struct {
	node
	ml     *memberlist.Memberlist
	log    *logSink
	events *eventLog
}

// memberConfig is the tests' fast memberlist config over n's transport,
// so tests converge quickly.
func memberConfig(t testing.TB, n node, cookie string, sink *logSink, ev *eventLog) *memberlist.Config {
	cfg := mltest.FastConfig()
	cfg.Name = n.k.Self().ID
	cfg.Transport = n.tr
	cfg.SecretKey = SecretKey(n.k)
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = n.tr.Port()
	cfg.AdvertisePort = n.tr.Port()
	cfg.LogOutput = nil // memberlist takes one of LogOutput and Logger
	cfg.Logger = log.New(sink, "", 0)
	cfg.Events = ev
	return cfg
}

// startMember starts a kernel, a transport and memberlist with cookie
// (kernel and gossip alike); memberlist is shut down at cleanup.
func startMember(t testing.TB, id, cookie string) *member {
	t.Helper()
	n := newNode(t, kernelConfig(t, id, cookie))
	m := &member{node: n, log: newLogSink(t), events: &eventLog{}}
	ml, err := memberlistCreate(t, n, cookie, m)
	if err != nil {
		t.Fatalf("memberlist.Create: %v", err)
	}
	m.ml = ml
	return m
}

// memberlistCreate creates memberlist over n for m, shut down at cleanup.
func memberlistCreate(t testing.TB, n node, cookie string, m *member) (*memberlist.Memberlist, error) {
	ml, err := memberlist.Create(memberConfig(t, n, cookie, m.log, m.events))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ml.Shutdown() })
	return ml, nil
}

// addr is the member's one address: kernel host:port.
func (m *member) addr() string { return m.k.Self().Addr() }

// names returns the names of the members m sees alive.
func (m *member) names() []string {
	var out []string
	for _, n := range m.ml.Members() {
		out = append(out, n.Name)
	}
	return out
}

// eventLog records memberlist's join and leave events.
type eventLog struct {
	mu    sync.Mutex
	left  []string
	joins []string
}

func (e *eventLog) NotifyJoin(n *memberlist.Node) {
	e.mu.Lock()
	e.joins = append(e.joins, n.Name)
	e.mu.Unlock()
}

func (e *eventLog) NotifyLeave(n *memberlist.Node) {
	e.mu.Lock()
	e.left = append(e.left, n.Name)
	e.mu.Unlock()
}

func (e *eventLog) NotifyUpdate(*memberlist.Node) {}

func (e *eventLog) hasLeft(name string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range e.left {
		if n == name {
			return true
		}
	}
	return false
}

// recvPacket waits for the next packet on tr.
func recvPacket(t testing.TB, tr *Transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10 s")
		return nil
	}
}

// recvStream waits for the next stream on tr.
func recvStream(t testing.TB, tr *Transport) net.Conn {
	t.Helper()
	select {
	case c := <-tr.StreamCh():
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no stream within 10 s")
		return nil
	}
}
