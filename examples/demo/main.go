// Command demo runs a three-node notp cluster in one process: the README's
// first command.
//
//	go run ./examples/demo
//	go run ./examples/demo -keys 100000 -rfactor 64 -v
//
// It starts three nodes on 127.0.0.1 (each a kernel, a gossip ring and a
// command server, as package cluster builds them), makes node-1 meet the
// other two, waits until every node's ring holds all three, then routes each
// key by ring lookup to a "counter" GenServer on the key's owner. Each key
// enters the cluster at a different node (key i at node i mod 3), so the
// counts only add up if all three rings agree. It prints the ring, each
// node's share of the key space and the keys its counter saw, and stops the
// nodes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	nodes   int
	keys    int
	rfactor int
	verbose bool
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.nodes, "nodes", 3, "number of nodes to start (1-16)")
	fs.IntVar(&o.keys, "keys", 10000, "number of keys to route (1-10000000)")
	fs.IntVar(&o.rfactor, "rfactor", 0, "tokens per node (0 = the ring default, 128)")
	fs.BoolVar(&o.verbose, "v", false, "log the nodes' activity to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.nodes < 1 || o.nodes > 16:
		return o, fmt.Errorf("-nodes must be in 1..16, got %d", o.nodes)
	case o.keys < 1 || o.keys > 10_000_000:
		return o, fmt.Errorf("-keys must be in 1..10000000, got %d", o.keys)
	case o.rfactor < 0 || o.rfactor > 1024:
		return o, fmt.Errorf("-rfactor must be in 0..1024, got %d", o.rfactor)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "demo:", err)
		return 2
	}
	if err := demo(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		return 1
	}
	return 0
}

const ringID = "demo"

// demo starts the nodes, forms the cluster, routes the keys to their
// owners' counters and reports the ring and the counts.
func demo(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var d demoCluster
	defer d.stop()
	if err := d.start(ctx, o, logger, stdout); err != nil {
		return err
	}
	if err := d.form(ctx, stdout); err != nil {
		return err
	}
	routed, took, err := d.routeKeys(ctx, o.keys)
	if err != nil {
		return err
	}
	total, err := d.report(ctx, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nrouted %d keys in %s (%.0f keys/s); the counters saw %d\n",
		routed, took.Round(time.Millisecond), float64(routed)/took.Seconds(), total)
	if total != o.keys {
		return fmt.Errorf("counters saw %d keys, want %d", total, o.keys)
	}
	fmt.Fprintln(stdout, "stopping")
	return nil
}

// demoCluster is the demo's nodes and the counter each one serves.
type demoCluster struct {
	nodes    []*cluster.Node
	counters []*genserver.Server
}

// stop stops the counters, then the nodes.
func (d *demoCluster) stop() {
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range d.counters {
		s.Stop(stopCtx)
	}
	for _, n := range d.nodes {
		n.Stop(stopCtx)
	}
}

// start starts the nodes. Each serves a counter GenServer; only its actor
// goroutine touches its map.
func (d *demoCluster) start(ctx context.Context, o options, logger *slog.Logger, stdout io.Writer) error {
	fmt.Fprintf(stdout, "starting %d nodes on 127.0.0.1, ring %q\n", o.nodes, ringID)
	for i := range o.nodes {
		id := fmt.Sprintf("node-%d", i+1)
		n, err := cluster.New(cluster.Config{
			Node:   notp.Node{ID: id, Host: "127.0.0.1"},
			Cookie: "demo cookie, not for production",
			Gossip: gossip.Config{RFactor: o.rfactor},
			Logger: logger.With("node", id),
		})
		if err != nil {
			return err
		}
		if err := n.Start(ctx, ringID); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		d.nodes = append(d.nodes, n)
		s, err := startCounter(ctx, n)
		if err != nil {
			return err
		}
		d.counters = append(d.counters, s)
		fmt.Fprintf(stdout, "  %s listening on %s\n", n.Self().ID, n.Self().Addr())
	}
	return nil
}

// form makes the cluster: node-1 meets the others; gossip spreads the
// ring until every node's ring agrees.
func (d *demoCluster) form(ctx context.Context, stdout io.Writer) error {
	began := time.Now()
	for _, n := range d.nodes[1:] {
		if err := d.nodes[0].Ring().Meet(ctx, n.Self()); err != nil {
			return fmt.Errorf("meet %s: %w", n.Self().ID, err)
		}
	}
	if err := waitAgree(ctx, d.nodes, 15*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node-1 met the others; all %d rings agree after %s\n\n", len(d.nodes),
		time.Since(began).Round(time.Millisecond))
	return nil
}

// routeKeys routes keys "key-0".."key-<n-1>", each entering at a
// different node, 32 at a time, and returns how many were routed and how
// long it took.
func (d *demoCluster) routeKeys(ctx context.Context, n int) (int64, time.Duration, error) {
	var routed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := route(ctx, d.nodes[i%len(d.nodes)], fmt.Sprintf("key-%d", i)); err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				routed.Add(1)
			}
		})
	}
	began := time.Now()
	feedKeys(ctx, next, n)
	wg.Wait()
	took := time.Since(began)
	select {
	case err := <-errs:
		return 0, 0, fmt.Errorf("routing: %w", err)
	default:
	}
	return routed.Load(), took, ctx.Err()
}

// feedKeys sends 0..n-1 on next until ctx ends, then closes it.
func feedKeys(ctx context.Context, next chan<- int, n int) {
	defer close(next)
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			return
		}
	}
}

// report prints the ring as node-1 sees it, with each counter's total,
// and returns the sum of the counters.
func (d *demoCluster) report(ctx context.Context, stdout io.Writer) (int, error) {
	ring := d.nodes[0].Ring().View()
	shares := ring.Shares()
	weights := ring.Weights()
	members := d.nodes[0].Ring().Members()
	slices.SortFunc(members, func(a, b gossip.Member) int { return strings.Compare(a.Node.ID, b.Node.ID) })
	fmt.Fprintf(stdout, "ring %q: %d nodes, %d tokens\n", ringID, ring.NumberNodes(), ring.Size())
	tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "node\taddress\tweight\thealth\tshare\tkeys")
	total := 0
	for _, m := range members {
		got, err := genserver.Call[int](ctx, d.nodes[0].Kernel(),
			genserver.Target{Name: "counter", Node: m.Node}, "count", nil)
		if err != nil {
			return 0, fmt.Errorf("count on %s: %w", m.Node.ID, err)
		}
		total += got
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%.1f%%\t%d\n", m.Node.ID, m.Node.Addr(), weights[m.Node.ID],
			m.Health, 100*shares[m.Node.ID], got)
	}
	tw.Flush()
	return total, nil
}

// route sends key to the counter on its owner, looked up in the ring of the
// node the key enters at. The owner counts it only if it owns the key in
// its own ring too: a disagreement fails the demo.
func route(ctx context.Context, entry *cluster.Node, key string) error {
	owners := entry.Ring().PreferenceList([]byte(key), 1)
	if len(owners) == 0 {
		return errors.New("empty ring")
	}
	ok, err := genserver.Call[bool](ctx, entry.Kernel(),
		genserver.Target{Name: "counter", Node: owners[0]}, "incr", key)
	if err != nil {
		return fmt.Errorf("%s: incr on %s: %w", key, owners[0].ID, err)
	}
	if !ok {
		return fmt.Errorf("%s: %s says it does not own the key", key, owners[0].ID)
	}
	return nil
}

// startCounter starts the counter GenServer on n: "incr" counts a key if n
// owns it in its own ring (and answers whether it did), "count" returns how
// many it counted.
func startCounter(ctx context.Context, n *cluster.Node) (*genserver.Server, error) {
	s, err := genserver.New(n.Kernel(), genserver.Config{Name: "counter"})
	if err != nil {
		return nil, err
	}
	counted := 0
	genserver.HandleTyped(s, "incr", func(_ context.Context, key string, _ kernel.From) (bool, error) {
		owners := n.Ring().PreferenceList([]byte(key), 1)
		if len(owners) == 0 || owners[0].ID != n.Self().ID {
			return false, nil
		}
		counted++
		return true, nil
	})
	genserver.HandleTyped(s, "count", func(context.Context, struct{}, kernel.From) (int, error) {
		return counted, nil
	})
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// waitAgree waits until every node's ring holds every node.
func waitAgree(ctx context.Context, nodes []*cluster.Node, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	want := make([]string, 0, len(nodes))
	for _, n := range nodes {
		want = append(want, n.Self().ID)
	}
	slices.Sort(want)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		agree := true
		for _, n := range nodes {
			var have []string
			for _, m := range n.Ring().View().Nodes() {
				have = append(have, m.ID)
			}
			slices.Sort(have)
			if !slices.Equal(have, want) {
				agree = false
				break
			}
		}
		if agree {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rings did not agree within %s", limit)
		case <-tick.C:
		}
	}
}
