package kernel

import (
	"net"
	"testing"
	"time"
)

// dialFrom opens n TCP connections to k from the local IP from (any
// 127.0.0.0/8 address is loopback on Linux) that send nothing, closed at
// cleanup. Connections the kernel refuses at once still count: the
// kernel closes them after accepting.
func dialFrom(t *testing.T, k *Kernel, from string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	for range n {
		c, err := d.Dial("tcp", k.Addr().String())
		if err != nil {
			t.Fatalf("dial from %s: %v", from, err)
		}
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return cs
}

// An idle crowd from one IP holds at most MaxPendingPerIP slots; the rest
// are closed at once and counted, and a peer from another IP still gets
// through while the crowd waits.
func TestPendingConnsPerIP(t *testing.T) {
	k := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute })
	echo(t, k, "echo")
	dialFrom(t, k, "127.0.0.2", 1000)
	waitFor(t, "the crowd accepted", func() bool {
		st := k.Stats()
		return st.RejectedPerIP+uint64(st.PendingConnections) == 1000
	})
	st := k.Stats()
	if st.PendingConnections != DefaultMaxPendingPerIP || st.RejectedPerIP != 1000-DefaultMaxPendingPerIP {
		t.Fatalf("pending %d, rejected per IP %d; want %d and %d",
			st.PendingConnections, st.RejectedPerIP, DefaultMaxPendingPerIP, 1000-DefaultMaxPendingPerIP)
	}
	good := startKernel(t, nil) // dials from 127.0.0.1
	connect(t, good, k)
	if got, err := good.Call(ctxT(t), k.Self(), "echo", []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("call during the crowd: %q, %v", got, err)
	}
	if p := k.Stats().PendingConnections; p != DefaultMaxPendingPerIP {
		t.Fatalf("pending after a good peer's hello: %d, want %d", p, DefaultMaxPendingPerIP)
	}
}

// Crowds from many IPs together hold at most MaxPendingConns slots; the
// slots come back when the connections go, and then a peer gets through.
func TestPendingConnsTotal(t *testing.T) {
	const max = 16
	k := startKernel(t, func(c *Config) { c.HandshakeTimeout = time.Minute; c.MaxPendingConns = max })
	echo(t, k, "echo")
	var crowd []net.Conn
	for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
		crowd = append(crowd, dialFrom(t, k, ip, 10)...)
	}
	waitFor(t, "the crowd accepted", func() bool {
		st := k.Stats()
		return st.RejectedPending+uint64(st.PendingConnections) == 30
	})
	if st := k.Stats(); st.PendingConnections != max || st.RejectedPending != 30-max || st.RejectedPerIP != 0 {
		t.Fatalf("pending %d, rejected %d (per IP %d); want %d and %d", st.PendingConnections, st.RejectedPending, st.RejectedPerIP, max, 30-max)
	}
	for _, c := range crowd {
		c.Close()
	}
	waitFor(t, "slots given back", func() bool { return k.Stats().PendingConnections == 0 })
	good := startKernel(t, nil)
	connect(t, good, k)
	if got, err := good.Call(ctxT(t), k.Self(), "echo", []byte("hi")); err != nil || string(got) != "hi" {
		t.Fatalf("call after the crowd: %q, %v", got, err)
	}
	if st := k.Stats(); st.RejectedPending != 30-max || st.PendingConnections != 0 {
		t.Fatalf("after the good peer: rejected %d, pending %d", st.RejectedPending, st.PendingConnections)
	}
}
