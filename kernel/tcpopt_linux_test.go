package kernel

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// Both ends of a kernel connection bound how long a dead peer can keep
// it: TCP_USER_TIMEOUT at WriteTimeout and keepalive probes.
func TestConnectionsNoticeDeadPeers(t *testing.T) {
	wt := 3 * time.Second
	a, b := pair(t, false, func(c *Config) { c.WriteTimeout = wt })
	for _, tc := range []struct {
		side string
		s    *session
	}{{"dialed", a.sessionTo(b.Self().ID)}, {"accepted", b.sessionTo(a.Self().ID)}} {
		if tc.s == nil {
			t.Fatalf("%s: no session", tc.side)
		}
		checkDeadPeerOptions(t, tc.side, tc.s.c, wt)
	}
}

// Connections of other protocols on the node's port get the same bounds,
// on both ends: the dialer's from Kernel.Dial and the one its listener
// accepts.
func TestMuxConnectionsNoticeDeadPeers(t *testing.T) {
	wt := 4 * time.Second
	a, b := pair(t, false, func(c *Config) { c.WriteTimeout = wt; c.BusyPoll = BusyPollOff })
	ln, err := b.Listen('R')
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := a.Dial(ctxT(t), b.Self().Addr(), 'R')
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := <-accepted
	if s == nil {
		t.Fatal("Accept failed")
	}
	defer s.Close()
	checkDeadPeerOptions(t, "dialed", c, wt)
	checkDeadPeerOptions(t, "accepted", s, wt)
}

// checkDeadPeerOptions checks c's TCP_USER_TIMEOUT (wt) and keepalive.
func checkDeadPeerOptions(t *testing.T, side string, c net.Conn, wt time.Duration) {
	t.Helper()
	conn, ok := c.(*net.TCPConn)
	if !ok {
		t.Fatalf("%s: connection is a %T, want *net.TCPConn", side, c)
	}
	want := map[string]struct{ level, opt, val int }{
		"TCP_USER_TIMEOUT": {syscall.IPPROTO_TCP, tcpUserTimeout, int(wt.Milliseconds())},
		"SO_KEEPALIVE":     {syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		"TCP_KEEPIDLE":     {syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(deadPeerKeepAlive.Idle / time.Second)},
		"TCP_KEEPINTVL":    {syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(deadPeerKeepAlive.Interval / time.Second)},
		"TCP_KEEPCNT":      {syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, deadPeerKeepAlive.Count},
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range want {
		var got int
		var gerr error
		rc.Control(func(fd uintptr) { got, gerr = syscall.GetsockoptInt(int(fd), w.level, w.opt) })
		if gerr != nil || got != w.val {
			t.Errorf("%s: %s = %d (%v), want %d", side, name, got, gerr, w.val)
		}
	}
}
