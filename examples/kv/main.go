// Command kv is a sharded, replicated key/value service built from notp's
// parts: a cluster of nodes, a "kv" GenServer on each, and the ring to
// decide where each key lives.
//
//	go run ./examples/kv
//	go run ./examples/kv -nodes 5 -keys 5000 -n 3 -w 2 -r 2
//
// A Put or Get can enter at any node (the coordinator). The coordinator
// looks the key up in its ring: the preference list is the key's owner and
// the next n-1 distinct nodes clockwise (gossip.Ring.PreferenceList). A Put reads the
// replicas' versions, merges their vector clocks, advances its own entry and
// writes the value to all n replicas, succeeding when w of them acknowledge;
// a Get asks all n and needs r answers, returning the value whose clock
// descends the others' (concurrent values are resolved by the later write
// and counted). With w + r > n a Get sees the latest acknowledged Put.
//
// The program starts the nodes in one process, writes the keys through
// rotating coordinators, reads every key back through another node, stops
// one node and shows that every key is still readable from its remaining
// replicas.
package main

import (
	"bytes"
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
	"syscall"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/vclock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	nodes, keys, n, w, r int
	verbose              bool
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.nodes, "nodes", 4, "nodes to start (2-16)")
	fs.IntVar(&o.keys, "keys", 2000, "keys to write and read back (1-1000000)")
	fs.IntVar(&o.n, "n", 3, "replicas per key (1..nodes)")
	fs.IntVar(&o.w, "w", 2, "acknowledgements a Put needs (1..n)")
	fs.IntVar(&o.r, "r", 2, "answers a Get needs (1..n)")
	fs.BoolVar(&o.verbose, "v", false, "log the nodes' activity to stderr")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.nodes < 2 || o.nodes > 16:
		return o, fmt.Errorf("-nodes must be in 2..16, got %d", o.nodes)
	case o.keys < 1 || o.keys > 1_000_000:
		return o, fmt.Errorf("-keys must be in 1..1000000, got %d", o.keys)
	case o.n < 1 || o.n > o.nodes:
		return o, fmt.Errorf("-n must be in 1..%d (the node count), got %d", o.nodes, o.n)
	case o.w < 1 || o.w > o.n:
		return o, fmt.Errorf("-w must be in 1..%d (n), got %d", o.n, o.w)
	case o.r < 1 || o.r > o.n:
		return o, fmt.Errorf("-r must be in 1..%d (n), got %d", o.n, o.r)
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "kv:", err)
		return 2
	}
	if err := kvDemo(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "kv:", err)
		return 1
	}
	return 0
}

// item is one stored version of a key.
type item struct {
	Value   []byte        `msgpack:"v"`
	Clock   *vclock.Clock `msgpack:"c"`
	Written int64         `msgpack:"t"` // coordinator's wall clock, tie-break of concurrent writes
	Writer  string        `msgpack:"w"`
}

// newer reports whether a should replace b.
func newer(a, b item) bool {
	switch a.Clock.Compare(b.Clock) {
	case vclock.After:
		return true
	case vclock.Concurrent:
		if a.Written != b.Written {
			return a.Written > b.Written
		}
		return a.Writer > b.Writer
	}
	return false
}

type putReq struct {
	Key  string `msgpack:"k"`
	Item item   `msgpack:"i"`
}

// getReply is a replica's answer to "get".
type getReply struct {
	Found bool `msgpack:"f"`
	Item  item `msgpack:"i"`
}

// startStore starts the "kv" GenServer on k. Its map is owned by the actor
// goroutine; "put" keeps the newer version, "get" returns the stored one.
func startStore(ctx context.Context, k *kernel.Kernel) (*genserver.Server, error) {
	s, err := genserver.New(k, genserver.Config{Name: "kv"})
	if err != nil {
		return nil, err
	}
	data := map[string]item{}
	genserver.HandleTyped(s, "put", func(_ context.Context, p putReq, _ kernel.From) (bool, error) {
		if p.Key == "" || p.Item.Clock == nil {
			return false, errors.New("put needs a key and a clock")
		}
		if cur, ok := data[p.Key]; !ok || newer(p.Item, cur) {
			data[p.Key] = p.Item
		}
		return true, nil
	})
	genserver.HandleTyped(s, "get", func(_ context.Context, key string, _ kernel.From) (getReply, error) {
		it, ok := data[key]
		return getReply{Found: ok, Item: it}, nil
	})
	genserver.HandleTyped(s, "size", func(context.Context, struct{}, kernel.From) (int, error) {
		return len(data), nil
	})
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// client coordinates Puts and Gets through one node.
type client struct {
	node    *cluster.Node
	n, w, r int
}

// replicas returns the key's preference list in the coordinator's ring:
// the owner, then the next distinct nodes clockwise from the key.
func (c client) replicas(key string) []notp.Node {
	return c.node.Ring().PreferenceList([]byte(key), c.n)
}

// replicaTimeout bounds one replica's answer; a replica whose link is down
// fails at once (see call).
const replicaTimeout = 2 * time.Second

// errDown is a replica whose kernel link is not up: a down node fails fast
// instead of holding the request for the whole timeout.
var errDown = errors.New("replica not connected")

// call calls event on the kv server of rep.
func call[Resp any](ctx context.Context, c client, rep notp.Node, event string, req any) (Resp, error) {
	k := c.node.Kernel()
	if !k.Connected(rep.ID) {
		var zero Resp
		return zero, errDown
	}
	ctx, cancel := context.WithTimeout(ctx, replicaTimeout)
	defer cancel()
	return genserver.Call[Resp](ctx, k, genserver.Target{Name: "kv", Node: rep}, event, req)
}

// read asks every replica for key and returns the answers that arrived.
func (c client) read(ctx context.Context, key string) (answers []getReply, errs []error) {
	reps := c.replicas(key)
	results := make([]getReply, len(reps))
	errList := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, rep := range reps {
		wg.Go(func() {
			results[i], errList[i] = call[getReply](ctx, c, rep, "get", key)
		})
	}
	wg.Wait()
	for i := range reps {
		if errList[i] != nil {
			errs = append(errs, fmt.Errorf("%s: %w", reps[i].ID, errList[i]))
			continue
		}
		answers = append(answers, results[i])
	}
	return answers, errs
}

// Put stores value under key on w of its n replicas.
func (c client) Put(ctx context.Context, key string, value []byte) error {
	answers, _ := c.read(ctx, key) // versions we must descend from; missing replicas are fine
	clock := vclock.New()
	for _, a := range answers {
		if a.Found {
			clock.Merge(a.Item.Clock)
		}
	}
	clock.Increment(c.node.Self().ID)
	req := putReq{Key: key, Item: item{Value: value, Clock: clock, Written: time.Now().UnixNano(), Writer: c.node.Self().ID}}
	reps := c.replicas(key)
	acks := 0
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, rep := range reps {
		wg.Go(func() {
			ok, err := call[bool](ctx, c, rep, "put", req)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || !ok {
				errs = append(errs, fmt.Errorf("%s: %w", rep.ID, err))
				return
			}
			acks++
		})
	}
	wg.Wait()
	if acks < c.w {
		return fmt.Errorf("put %q: %d of %d replicas acknowledged, need %d: %w", key, acks, len(reps), c.w, errors.Join(errs...))
	}
	return nil
}

// Get returns key's latest value from r of its replicas.
func (c client) Get(ctx context.Context, key string) (value []byte, found bool, conflicts int, err error) {
	answers, errs := c.read(ctx, key)
	if len(answers) < c.r {
		return nil, false, 0, fmt.Errorf("get %q: %d answers, need %d: %w", key, len(answers), c.r, errors.Join(errs...))
	}
	var best *item
	for i := range answers {
		if !answers[i].Found {
			continue
		}
		it := answers[i].Item
		if best != nil && best.Clock.Compare(it.Clock) == vclock.Concurrent {
			conflicts++
		}
		if best == nil || newer(it, *best) {
			best = &it
		}
	}
	if best == nil {
		return nil, false, conflicts, nil
	}
	return best.Value, true, conflicts, nil
}

// kvDemo starts the nodes, writes every key twice, reads it back through
// other nodes, then stops one node and reads again.
func kvDemo(ctx context.Context, o options, stdout, stderr io.Writer) error {
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	d := &kvCluster{o: o, stopped: map[int]bool{}}
	defer d.stop()
	if err := d.start(ctx, logger); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d nodes in ring \"kv\"; each key on n=%d replicas, w=%d, r=%d\n", len(d.nodes), o.n, o.w, o.r)
	if err := d.writeTwice(ctx, stdout); err != nil {
		return err
	}
	conflicts, err := d.check(ctx, d.clients)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "read every key back through another node: all %d latest (%d concurrent versions seen)\n", o.keys, conflicts)
	if err := d.printSizes(ctx, stdout); err != nil {
		return err
	}
	return d.loseNode(ctx, stdout)
}

// kvCluster is the example's nodes, their stores and a client per node.
type kvCluster struct {
	o       options
	nodes   []*cluster.Node
	stores  []*genserver.Server
	clients []client
	stopped map[int]bool // nodes loseNode stopped
}

// stop stops every store and node still running.
func (d *kvCluster) stop() {
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range d.nodes {
		if !d.stopped[i] {
			d.stores[i].Stop(sctx)
			d.nodes[i].Stop(sctx)
		}
	}
}

// start starts the nodes with a store each, meets them through the first
// and waits until every ring holds them all.
func (d *kvCluster) start(ctx context.Context, logger *slog.Logger) error {
	for i := range d.o.nodes {
		id := fmt.Sprintf("kv-%d", i+1)
		n, err := cluster.New(cluster.Config{
			Node:   notp.Node{ID: id, Host: "127.0.0.1"},
			Cookie: "kv example cookie, not for production",
			Gossip: gossip.Config{RFactor: 32}, // 32 tokens per node: shares within a few % of even
			Logger: logger.With("node", id),
		})
		if err != nil {
			return err
		}
		if err := n.Start(ctx, "kv"); err != nil {
			return fmt.Errorf("start %s: %w", id, err)
		}
		d.nodes = append(d.nodes, n)
		s, err := startStore(ctx, n.Kernel())
		if err != nil {
			return err
		}
		d.stores = append(d.stores, s)
		d.clients = append(d.clients, client{node: n, n: d.o.n, w: d.o.w, r: d.o.r})
	}
	for _, n := range d.nodes[1:] {
		if err := d.nodes[0].Ring().Meet(ctx, n.Self()); err != nil {
			return err
		}
	}
	return waitRings(ctx, d.nodes, len(d.nodes))
}

// value is what round writes to key i.
func value(i, round int) []byte { return fmt.Appendf(nil, "value-%d-round-%d", i, round) }

// writeTwice writes two rounds through rotating coordinators: the second
// overwrites the first, so reads must pick the newer version.
func (d *kvCluster) writeTwice(ctx context.Context, stdout io.Writer) error {
	began := time.Now()
	for round := 1; round <= 2; round++ {
		if err := parallel(ctx, d.o.keys, func(i int) error {
			return d.clients[(i+round)%len(d.clients)].Put(ctx, fmt.Sprintf("key-%d", i), value(i, round))
		}); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %d keys twice in %s\n", d.o.keys, time.Since(began).Round(time.Millisecond))
	return nil
}

// check reads every key through the live clients, expects the second
// round's value and returns how many concurrent versions the reads met.
func (d *kvCluster) check(ctx context.Context, live []client) (int, error) {
	var mu sync.Mutex
	conflicts := 0
	err := parallel(ctx, d.o.keys, func(i int) error {
		v, found, c, err := live[i%len(live)].Get(ctx, fmt.Sprintf("key-%d", i))
		if err != nil {
			return err
		}
		if !found || !bytes.Equal(v, value(i, 2)) {
			return fmt.Errorf("key-%d: read %q (found %v), want %q", i, v, found, value(i, 2))
		}
		mu.Lock()
		conflicts += c
		mu.Unlock()
		return nil
	})
	return conflicts, err
}

// printSizes prints how many keys each node stores.
func (d *kvCluster) printSizes(ctx context.Context, stdout io.Writer) error {
	var sizes []string
	for _, n := range d.nodes {
		size, err := genserver.Call[int](ctx, n.Kernel(), genserver.Target{Name: "kv"}, "size", nil)
		if err != nil {
			return err
		}
		sizes = append(sizes, fmt.Sprintf("%s=%d", n.Self().ID, size))
	}
	fmt.Fprintf(stdout, "keys stored per node (each key %d times): %s\n", d.o.n, strings.Join(sizes, " "))
	return nil
}

// loseNode stops the last node: reads still find r answers among the
// remaining replicas when n - 1 ≥ r.
func (d *kvCluster) loseNode(ctx context.Context, stdout io.Writer) error {
	last := len(d.nodes) - 1
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	d.stores[last].Stop(sctx)
	err := d.nodes[last].Stop(sctx)
	cancel()
	d.stopped[last] = true
	if err != nil {
		return fmt.Errorf("stop %s: %w", d.nodes[last].Self().ID, err)
	}
	fmt.Fprintf(stdout, "stopped %s\n", d.nodes[last].Self().ID)
	if d.o.n-1 < d.o.r {
		fmt.Fprintf(stdout, "(with n-1 < r some keys need the stopped node: not reading)\n")
		return nil
	}
	if _, err := d.check(ctx, d.clients[:last]); err != nil {
		return fmt.Errorf("after stopping a node: %w", err)
	}
	fmt.Fprintf(stdout, "every key is still readable from its remaining replicas\n")
	return nil
}

// parallel runs fn(0..count-1) on 32 goroutines and returns the first error.
func parallel(ctx context.Context, count int, fn func(i int) error) error {
	next := make(chan int)
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range count {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// waitRings waits until every node's ring holds want nodes.
func waitRings(ctx context.Context, nodes []*cluster.Node, want int) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if !slices.ContainsFunc(nodes, func(n *cluster.Node) bool { return n.Ring().View().NumberNodes() != want }) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rings did not reach %d nodes in time", want)
		case <-time.After(5 * time.Millisecond):
		}
	}
}
