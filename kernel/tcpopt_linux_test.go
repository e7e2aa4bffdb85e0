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
		conn, ok := tc.s.c.(*net.TCPConn)
		if !ok {
			t.Fatalf("%s: session runs over %T, want *net.TCPConn", tc.side, tc.s.c)
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
				t.Errorf("%s: %s = %d (%v), want %d", tc.side, name, got, gerr, w.val)
			}
		}
	}
}
