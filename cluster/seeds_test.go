package cluster_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/discover"
	"github.com/notp-go/notp/gossip"
)

// srvTable is a DNS of one SRV name whose records are added as nodes
// start (their ports are known only then); every target is 127.0.0.1.
type srvTable struct {
	mu   sync.Mutex
	name string
	recs []*net.SRV
}

func (r *srvTable) add(n *cluster.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, &net.SRV{Target: n.Self().ID + ".test.", Port: uint16(n.Self().Port)})
}

func (r *srvTable) LookupHost(ctx context.Context, host string) ([]string, error) {
	return []string{"127.0.0.1"}, nil
}

func (r *srvTable) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name != r.name || len(r.recs) == 0 {
		return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
	}
	out := make([]*net.SRV, len(r.recs))
	for i, s := range r.recs {
		c := *s
		out[i] = &c
	}
	return name, out, nil
}

// Nodes given one SRV name as their seeds form one cluster: the first
// finds only itself and starts the ring, the others find it (or each
// other) through the SRV records, learn its id from the hello and meet it.
func TestSeedsFromSRV(t *testing.T) {
	dns := &srvTable{name: "_notp._tcp.ring.test"}
	var ns []*cluster.Node
	for _, id := range []string{"a", "b", "c"} {
		n, err := cluster.New(cluster.Config{
			Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: testCookie,
			Gossip: gossip.Config{Interval: 100 * time.Millisecond, Memberlist: clustertest.FastMemberlist()},
			Seeds:  []string{dns.name},
			Discovery: discover.Config{Resolver: dns, MinBackoff: 20 * time.Millisecond,
				MaxBackoff: 200 * time.Millisecond},
			Logger: clustertest.Logger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Stop(context.Background()) })
		if err := n.Start(ctxT(t), "ring"); err != nil {
			t.Fatal(err)
		}
		dns.add(n)
		ns = append(ns, n)
	}
	clustertest.WaitFor(t, "one ring of a, b, c", func() bool { return converged(ns, "a", "b", "c") })
}

// Malformed seeds are refused by New.
func TestSeedsValidation(t *testing.T) {
	for _, seeds := range [][]string{{"bad host:1"}, {"host:99999"}, {"no-port-and-no-default"}} {
		_, err := cluster.New(cluster.Config{Node: notp.Node{ID: "v", Host: "127.0.0.1"}, Cookie: testCookie, Seeds: seeds})
		if !errors.Is(err, cluster.ErrInvalidConfig) || !errors.Is(err, discover.ErrBadSeed) {
			t.Errorf("Seeds %q: %v, want ErrInvalidConfig wrapping discover.ErrBadSeed", seeds, err)
		}
	}
}
