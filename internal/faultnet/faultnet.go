package faultnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by a Host's methods; callers branch with errors.Is.
var (
	// ErrRefused: a dial crossed a blocked direction in Refuse mode.
	ErrRefused = errors.New("faultnet: connection refused across a partition")
	// ErrClosed: the Network was closed.
	ErrClosed = errors.New("faultnet: network closed")
	// ErrAddr: an address is not usable (not an IP literal, not the host's
	// own address for a bind, not loopback for a host).
	ErrAddr = errors.New("faultnet: bad address")
)

const (
	// MaxDelayed is how many datagrams may be held back for reordering at
	// a time; beyond it datagrams are sent at once.
	MaxDelayed = 1024
	// DefaultReorderDelay is PacketFaults.ReorderDelay when it is 0.
	DefaultReorderDelay = 10 * time.Millisecond
	// maxReorderDelay bounds PacketFaults.ReorderDelay.
	maxReorderDelay = time.Second
)

// StreamMode is what a dial across a blocked direction does.
type StreamMode uint8

const (
	// Refuse fails the dial at once with ErrRefused, as a closed port's
	// reset would.
	Refuse StreamMode = iota
	// Blackhole holds the dial until its ctx ends, the block heals (then
	// it connects) or the Network closes, as lost SYNs would.
	Blackhole
)

// PacketFaults are random faults applied to each datagram whose direction
// is open. Probabilities are in [0, 1]; the zero value injects nothing.
type PacketFaults struct {
	// Loss is the probability a datagram is dropped.
	Loss float64
	// Duplicate is the probability a datagram is delivered twice.
	Duplicate float64
	// Reorder is the probability a datagram is held back for a random
	// delay in (0, ReorderDelay], so later datagrams overtake it.
	Reorder float64
	// ReorderDelay bounds the hold-back; 0 = DefaultReorderDelay, at most
	// one second.
	ReorderDelay time.Duration
}

func (f PacketFaults) validate() error {
	for _, p := range []float64{f.Loss, f.Duplicate, f.Reorder} {
		if !(p >= 0 && p <= 1) { // also rejects NaN
			return fmt.Errorf("faultnet: probability %v outside [0, 1]", p)
		}
	}
	if f.ReorderDelay < 0 || f.ReorderDelay > maxReorderDelay {
		return fmt.Errorf("faultnet: ReorderDelay %v outside [0, %v]", f.ReorderDelay, maxReorderDelay)
	}
	return nil
}

// Stats count what the network did. Datagram counts are per send (a
// duplicated datagram counts once in PacketsSent).
type Stats struct {
	PacketsSent       uint64 // datagrams written by hosts
	PacketsBlocked    uint64 // dropped because their direction was blocked
	PacketsLost       uint64 // dropped by PacketFaults.Loss
	PacketsDuplicated uint64 // delivered twice
	PacketsReordered  uint64 // held back
	DialsRefused      uint64 // dials failed with ErrRefused
	DialsBlackholed   uint64 // dials held by a Blackhole block
	AcceptsDropped    uint64 // accepted connections closed at once
	ConnsCut          uint64 // connection ends closed by a block
}

type stats struct {
	sent, blocked, lost, duplicated, reordered, refused, blackholed, acceptsDropped, cut atomic.Uint64
}

type pair struct{ from, to netip.Addr }

// Network is one fault-injecting network. Create it with [New]; get a
// [Host] per node; block, partition and heal; Close it at the end.
type Network struct {
	mu      sync.Mutex
	rng     *rand.Rand
	blocked map[pair]bool
	faults  PacketFaults
	mode    StreamMode
	conns   map[*conn]struct{}
	hosts   map[netip.Addr]*Host
	changed chan struct{} // closed and replaced when a block is lifted
	delayed int           // datagrams held back
	closed  bool

	done  chan struct{}
	wg    sync.WaitGroup // goroutines holding datagrams back
	stats stats
}

// New returns a network with no faults. seed seeds the dice of
// PacketFaults.
func New(seed uint64) *Network {
	return &Network{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		blocked: make(map[pair]bool),
		conns:   make(map[*conn]struct{}),
		hosts:   make(map[netip.Addr]*Host),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// Loopback returns 127.0.0.i, a loopback address for the i-th host
// (1 ≤ i ≤ 254); other i panic.
func Loopback(i int) netip.Addr {
	if i < 1 || i > 254 {
		panic(fmt.Sprintf("faultnet: Loopback(%d): want 1..254", i))
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, byte(i)})
}

// Host returns the host with address ip, creating it on first use. ip
// must be a loopback address.
func (n *Network) Host(ip netip.Addr) (*Host, error) {
	ip = ip.Unmap()
	if !ip.IsLoopback() {
		return nil, fmt.Errorf("%w: host %v is not a loopback address", ErrAddr, ip)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.hosts[ip]
	if h == nil {
		h = &Host{n: n, ip: ip}
		n.hosts[ip] = h
	}
	return h, nil
}

// Block stops traffic from from to to (one direction): datagrams are
// dropped, and connections between the two are cut and refused or
// blackholed, since a stream needs both directions.
func (n *Network) Block(from, to netip.Addr) {
	n.mu.Lock()
	n.blocked[pair{from.Unmap(), to.Unmap()}] = true
	cut := n.cutLocked()
	n.mu.Unlock()
	n.closeConns(cut)
}

// Unblock lifts a block made by Block or Partition.
func (n *Network) Unblock(from, to netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := pair{from.Unmap(), to.Unmap()}
	if n.blocked[p] {
		delete(n.blocked, p)
		n.signalLocked()
	}
}

// Partition blocks both directions between every two hosts of different
// groups, adding to the blocks in place. Hosts in no group are not
// affected.
func (n *Network) Partition(groups ...[]netip.Addr) {
	n.mu.Lock()
	for i, g := range groups {
		for _, other := range groups[i+1:] {
			for _, a := range g {
				for _, b := range other {
					n.blocked[pair{a.Unmap(), b.Unmap()}] = true
					n.blocked[pair{b.Unmap(), a.Unmap()}] = true
				}
			}
		}
	}
	cut := n.cutLocked()
	n.mu.Unlock()
	n.closeConns(cut)
}

// Heal lifts every block.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.blocked) > 0 {
		clear(n.blocked)
		n.signalLocked()
	}
}

// Reachable reports whether datagrams from from to to pass (ignoring
// random faults).
func (n *Network) Reachable(from, to netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.blocked[pair{from.Unmap(), to.Unmap()}]
}

// SetPacketFaults sets the random faults of the next datagrams.
func (n *Network) SetPacketFaults(f PacketFaults) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.ReorderDelay == 0 {
		f.ReorderDelay = DefaultReorderDelay
	}
	n.mu.Lock()
	n.faults = f
	n.mu.Unlock()
	return nil
}

// SetStreamMode sets what the next dials across a block do.
func (n *Network) SetStreamMode(m StreamMode) {
	n.mu.Lock()
	n.mode = m
	n.mu.Unlock()
}

// Stats returns the network's counters.
func (n *Network) Stats() Stats {
	s := &n.stats
	return Stats{
		PacketsSent: s.sent.Load(), PacketsBlocked: s.blocked.Load(), PacketsLost: s.lost.Load(),
		PacketsDuplicated: s.duplicated.Load(), PacketsReordered: s.reordered.Load(),
		DialsRefused: s.refused.Load(), DialsBlackholed: s.blackholed.Load(),
		AcceptsDropped: s.acceptsDropped.Load(), ConnsCut: s.cut.Load(),
	}
}

// Close drops the datagrams held back, fails blackholed and later dials
// with ErrClosed and waits for the goroutines holding datagrams. It is
// idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.done)
	}
	n.mu.Unlock()
	n.wg.Wait()
	return nil
}

// signalLocked wakes blackholed dials to re-check their direction.
func (n *Network) signalLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

// streamOKLocked reports whether a connection between a and b may exist:
// both directions open.
func (n *Network) streamOKLocked(a, b netip.Addr) bool {
	return !n.blocked[pair{a, b}] && !n.blocked[pair{b, a}]
}

// cutLocked removes from tracking, and returns, the connections the
// current blocks cut.
func (n *Network) cutLocked() []*conn {
	var cut []*conn
	for c := range n.conns {
		if !n.streamOKLocked(c.local, c.remote) {
			delete(n.conns, c)
			cut = append(cut, c)
		}
	}
	return cut
}

func (n *Network) closeConns(cs []*conn) {
	for _, c := range cs {
		n.stats.cut.Add(1)
		c.Conn.Close()
	}
}

// track registers c unless a block between its ends exists already
// (checked under the same lock that blocks take, so no connection
// escapes a cut made meanwhile).
func (n *Network) track(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.streamOKLocked(c.local, c.remote) {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Network) untrack(c *conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}
