package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/notp-go/notp/discover"
)

// seedFinder returns the discover.Finder of Config.Discovery, whose
// DefaultPort defaults to this node's port (the cluster's nodes usually
// share one).
func (n *Node) seedFinder() (*discover.Finder, error) {
	dc := n.cfg.Discovery
	if dc.DefaultPort == 0 {
		dc.DefaultPort = n.cfg.Node.Port
	}
	f, err := discover.New(dc)
	if err != nil {
		return nil, fmt.Errorf("%w: Discovery: %w", ErrInvalidConfig, err)
	}
	return f, nil
}

// MeetSeeds resolves seeds (host:port, DNS names that resolve to several
// addresses, SRV names; see package discover) and meets the first node
// there that answers: the kernel's hello tells who it is (authenticated,
// so the id comes from a cookie holder), then the ring meets it. It
// retries with exponential backoff and jitter (Config.Discovery) until a
// meet succeeds or ctx ends. Seeds that resolve only to this node end it
// at once with nil: the first node of a cluster has no one to meet. Start
// runs it in the background for Config.Seeds.
func (n *Node) MeetSeeds(ctx context.Context, seeds []string) error {
	f, err := n.seedFinder()
	if err != nil {
		return err
	}
	return f.Retry(ctx, seeds, func(ctx context.Context, addrs []string) error {
		var errs []error
		others := 0
		for _, a := range addrs {
			if n.isSelfAddr(a) {
				continue
			}
			others++
			node, err := n.k.Identify(ctx, a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if err := n.ring.Meet(ctx, node); err != nil {
				errs = append(errs, fmt.Errorf("cluster: meet seed %s: %w", node, err))
				continue
			}
			n.log.Info("cluster: met seed", "node", n.cfg.Node.ID, "seed", node.String(), "addr", a)
			return nil
		}
		if others == 0 {
			return nil
		}
		err := errors.Join(errs...)
		n.log.Debug("cluster: no seed answered", "node", n.cfg.Node.ID, "err", err)
		return err
	})
}

// isSelfAddr reports whether addr (ip:port) is this node's: its host and
// port, or one of this machine's addresses with its port.
func (n *Node) isSelfAddr(addr string) bool {
	self := n.k.Self()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != strconv.Itoa(self.Port) {
		return false
	}
	if host == self.Host {
		return true
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	if sip := net.ParseIP(self.Host); sip != nil && !sip.IsUnspecified() {
		return sip.Equal(ip)
	}
	// Listening on a name or on every interface: any local address.
	ifs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// startSeeds meets Config.Seeds in the background until one answers or
// the node stops.
func (n *Node) startSeeds() {
	if len(n.cfg.Seeds) == 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.seedCancel, n.seedDone = cancel, make(chan struct{})
	go func() {
		defer close(n.seedDone)
		if err := n.MeetSeeds(ctx, n.cfg.Seeds); err != nil && ctx.Err() == nil {
			n.log.Warn("cluster: meeting seeds failed", "node", n.cfg.Node.ID, "err", err)
		}
	}()
}

// stopSeeds stops the background meeting and waits for it.
func (n *Node) stopSeeds() {
	if n.seedCancel != nil {
		n.seedCancel()
		<-n.seedDone
		n.seedCancel = nil
	}
}
