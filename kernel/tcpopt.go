package kernel

import (
	"net"
	"time"
)

// deadPeerKeepAlive is the keepalive of the kernel's TCP connections: a
// connection idle for Idle is probed every Interval, and Count unanswered
// probes (about 30 s in all) close it. Go's default (15 s, 15 s, 9) takes
// two and a half minutes to notice a peer that vanished without a FIN: a
// machine that lost power, or a network partition.
var deadPeerKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3}

// tuneTCP makes a kernel TCP connection notice a dead peer in bounded
// time, so the calls waiting on it fail with ErrConnectionLost instead of
// hanging on TCP's retransmissions (which go on for up to 15 minutes by
// default on Linux): data unacknowledged for userTimeout closes it
// (TCP_USER_TIMEOUT, Linux), and so do unanswered keepalive probes when it
// is idle. Connections from a Config.Dial or Config.Listen hook that are
// not *net.TCPConn are left alone.
func tuneTCP(c net.Conn, userTimeout time.Duration) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetKeepAliveConfig(deadPeerKeepAlive)
	setUserTimeout(tc, userTimeout)
}
