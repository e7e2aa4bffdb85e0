package faultnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Host is one node's view of the network: its loopback address, and
// sockets bound to it whose traffic the Network filters. Its methods have
// the signatures of the kernel's and the memberlist transport's socket
// hooks.
type Host struct {
	n  *Network
	ip netip.Addr
}

// Addr returns the host's address.
func (h *Host) Addr() netip.Addr { return h.ip }

// Dial connects from the host's address to addr, an ip:port literal, over
// TCP. A dial across a block fails with ErrRefused or waits (Blackhole
// mode, see [StreamMode]).
func (h *Host) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if !strings.HasPrefix(network, "tcp") {
		return nil, fmt.Errorf("%w: dial network %q: want tcp", ErrAddr, network)
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%w: dial %q: want an ip:port literal", ErrAddr, addr)
	}
	to := ap.Addr().Unmap()
	if err := h.n.admit(ctx, h.ip, to); err != nil {
		return nil, fmt.Errorf("faultnet: dial %s from %s: %w", addr, h.ip, err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: h.ip.AsSlice()}}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &conn{Conn: c, n: h.n, local: h.ip, remote: to}
	if !h.n.track(fc) { // blocked while connecting
		c.Close()
		h.n.stats.refused.Add(1)
		return nil, fmt.Errorf("faultnet: dial %s from %s: %w", addr, h.ip, ErrRefused)
	}
	return fc, nil
}

// admit returns nil when a connection between from and to may be made,
// waiting in Blackhole mode until it may.
func (n *Network) admit(ctx context.Context, from, to netip.Addr) error {
	counted := false
	for {
		n.mu.Lock()
		closed, ok, mode, changed := n.closed, n.streamOKLocked(from, to), n.mode, n.changed
		n.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case ok:
			return nil
		case mode == Refuse:
			n.stats.refused.Add(1)
			return ErrRefused
		}
		if !counted {
			counted = true
			n.stats.blackholed.Add(1)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("blackholed: %w", ctx.Err())
		case <-n.done:
			return ErrClosed
		case <-changed:
		}
	}
}

// bindAddr checks that addr ("host:port", host empty or the host's IP)
// names the host and returns it with the host's IP.
func (h *Host) bindAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: bind %q: %w", ErrAddr, addr, err)
	}
	if host != "" {
		ip, err := netip.ParseAddr(host)
		if err != nil || ip.Unmap() != h.ip {
			return "", fmt.Errorf("%w: bind %q: not host %s", ErrAddr, addr, h.ip)
		}
	}
	return net.JoinHostPort(h.ip.String(), port), nil
}

// Listen binds a TCP listener on the host's address (addr's host must be
// empty or that address). Accepted connections from hosts it cannot reach
// both ways are closed before Accept returns.
func (h *Host) Listen(ctx context.Context, network, addr string) (net.Listener, error) {
	a, err := h.bindAddr(addr)
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, network, a)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: ln, h: h}, nil
}

type listener struct {
	net.Listener
	h *Host
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		fc := &conn{Conn: c, n: l.h.n, local: l.h.ip, remote: addrIP(c.RemoteAddr())}
		if l.h.n.track(fc) {
			return fc, nil
		}
		l.h.n.stats.acceptsDropped.Add(1)
		c.Close()
	}
}

// addrIP returns a's IP (the zero Addr when a has none).
func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap.Addr().Unmap()
}

// conn is a tracked connection; a block between its ends closes it.
type conn struct {
	net.Conn
	n             *Network
	local, remote netip.Addr
}

func (c *conn) Close() error {
	c.n.untrack(c)
	return c.Conn.Close()
}

// ListenPacket binds a UDP socket on the host's address (addr's host must
// be empty or that address). Its WriteTo applies blocks and PacketFaults.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	if !strings.HasPrefix(network, "udp") {
		return nil, fmt.Errorf("%w: listen network %q: want udp", ErrAddr, network)
	}
	a, err := h.bindAddr(addr)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket(network, a)
	if err != nil {
		return nil, err
	}
	return &packetConn{PacketConn: pc, h: h}, nil
}

type packetConn struct {
	net.PacketConn
	h *Host
}

// WriteTo sends b to addr unless the network drops it; a dropped datagram
// reports success, as UDP does.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n := p.h.n
	to := addrIP(addr)
	n.stats.sent.Add(1)
	v := n.roll(p.h.ip, to)
	switch {
	case v.blocked:
		n.stats.blocked.Add(1)
		return len(b), nil
	case v.lost:
		n.stats.lost.Add(1)
		return len(b), nil
	case v.delay > 0:
		n.stats.reordered.Add(1)
		n.holdBack(p, append([]byte(nil), b...), addr, to, v)
		return len(b), nil
	}
	return p.deliver(b, addr, v.dup)
}

func (p *packetConn) deliver(b []byte, addr net.Addr, dup bool) (int, error) {
	k, err := p.PacketConn.WriteTo(b, addr)
	if err == nil && dup {
		p.h.n.stats.duplicated.Add(1)
		_, _ = p.PacketConn.WriteTo(b, addr)
	}
	return k, err
}

// verdict is what happens to one datagram.
type verdict struct {
	blocked, lost, dup bool
	delay              time.Duration
}

// roll decides a datagram's fate. A held-back datagram is counted in
// delayed, and the goroutine that will hold it is added to wg, here under
// the lock that Close takes, so Close waits for it.
func (n *Network) roll(from, to netip.Addr) verdict {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blocked[pair{from, to}] {
		return verdict{blocked: true}
	}
	f := n.faults
	var v verdict
	if f.Loss > 0 && n.rng.Float64() < f.Loss {
		return verdict{lost: true}
	}
	v.dup = f.Duplicate > 0 && n.rng.Float64() < f.Duplicate
	if f.Reorder > 0 && !n.closed && n.delayed < MaxDelayed && n.rng.Float64() < f.Reorder {
		v.delay = 1 + time.Duration(n.rng.Int64N(int64(f.ReorderDelay)))
		n.delayed++
		n.wg.Add(1)
	}
	return v
}

// holdBack delivers b after v.delay unless the network closes first or a
// block meanwhile stops its direction.
func (n *Network) holdBack(p *packetConn, b []byte, addr net.Addr, to netip.Addr, v verdict) {
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			n.delayed--
			n.mu.Unlock()
		}()
		t := time.NewTimer(v.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-n.done:
			return
		}
		if !n.Reachable(p.h.ip, to) {
			n.stats.blocked.Add(1)
			return
		}
		_, _ = p.deliver(b, addr, v.dup)
	}()
}
