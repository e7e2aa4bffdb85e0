package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

const ringID = "bench"

// node is one in-process cluster member.
type node struct {
	k      *kernel.Kernel
	r      *gossip.Ring
	events <-chan gossip.Event
	cancel func()
}

// cluster is N nodes and the watcher of their events.
type cluster struct {
	nodes []*node
	w     watch
	wg    sync.WaitGroup // event readers
}

// watch records, for one node ID and one event kind at a time, when each
// ring emitted it.
type watch struct {
	mu   sync.Mutex
	id   string
	kind gossip.EventKind
	seen []time.Time // per node; zero = not yet
	left int
	done chan struct{}
}

// arm starts watching for kind about id on n rings.
func (w *watch) arm(id string, kind gossip.EventKind, n int) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.id, w.kind = id, kind
	w.seen = make([]time.Time, n)
	w.left = n
	w.done = make(chan struct{})
	return w.done
}

// observe records ev from node i if it is what the watch waits for.
func (w *watch) observe(i int, ev gossip.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev.Kind != w.kind || w.seen == nil || !w.seen[i].IsZero() {
		return
	}
	if !slices.ContainsFunc(ev.Nodes, func(n notp.Node) bool { return n.ID == w.id }) {
		return
	}
	w.seen[i] = ev.Time
	w.left--
	if w.left == 0 {
		close(w.done)
	}
}

// result returns the latest event time, the node that emitted it and the
// nodes whose event is missing.
func (w *watch) result() (last time.Time, lastNode int, missing []int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, t := range w.seen {
		if t.IsZero() {
			missing = append(missing, i)
		} else if t.After(last) {
			last, lastNode = t, i
		}
	}
	return last, lastNode, missing
}

// useInsertForm decides how the cluster is formed: by one MInsert on node
// 0 ("insert") or by every node meeting node 0 ("meet"); "auto" meets up
// to 50 nodes. Forming by Meet costs O(N) ring-state messages of O(N)
// entries per node, O(N³) in all, which 200 nodes in one 2-core process
// cannot afford within minutes.
func useInsertForm(mode string, n int) bool {
	switch mode {
	case "insert":
		return true
	case "meet":
		return false
	}
	return n > 50
}

// useLazy decides gossip.Config.LazyConnect for n nodes.
func useLazy(mode string, n int) bool {
	switch mode {
	case "true":
		return true
	case "false":
		return false
	}
	limit := fdLimit()
	return limit > 0 && uint64(2*n*(n-1)) > limit/2
}

// runSize runs the whole measurement for one cluster size.
func runSize(ctx context.Context, o *options, n int, logger *slog.Logger, progress func(string, ...any)) (_ *result, err error) {
	rng := rand.New(rand.NewPCG(o.seed, uint64(n)))
	res := &result{
		Nodes:       n,
		LazyConnect: useLazy(o.lazy, n),
		Probe:       o.probe,
		Memberlist:  mlName(o.memberlist),
		GOMAXPROCS:  runtime.GOMAXPROCS(0),
	}
	c := &cluster{}
	defer func() {
		start := time.Now()
		c.stop()
		res.TeardownS = time.Since(start).Seconds()
		progress("%d nodes: teardown %.2f s", n, res.TeardownS)
	}()

	start := time.Now()
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		nd, err := startNode(ctx, fmt.Sprintf("n%03d", i), o.cookie, res.LazyConnect, o.memberlist, logger)
		if err != nil {
			return nil, fmt.Errorf("starting node %d: %w", i, err)
		}
		c.add(nd)
	}
	res.SetupS = time.Since(start).Seconds()
	progress("%d nodes: started in %.2f s (lazy connect %v)", n, res.SetupS, res.LazyConnect)

	if err := c.form(ctx, o, res, progress); err != nil {
		return nil, err
	}
	res.Resources = c.usage()
	progress("%d nodes: rings formed in %.2f s, memberlist in %.2f s; Meet p50 %.1f ms max %.1f ms", n, res.FormationS, res.FormationMLS, res.Meet.P50, res.Meet.Max)

	var ins, rem []time.Duration
	budget := time.Now().Add(o.budget)
	for t := range o.trials {
		if time.Now().After(budget) {
			res.Stopped = fmt.Sprintf("the %v budget ran out after %d trials", o.budget, t)
			break
		}
		di, dr, err := c.trial(ctx, o, t, rng, progress)
		if errors.Is(err, errTrialTimeout) {
			res.Stopped = fmt.Sprintf("trial %d: %v", t, err)
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trial %d: %w", t, err)
		}
		ins, rem = append(ins, di), append(rem, dr)
	}
	if res.Stopped != "" {
		progress("%d nodes: trials stopped: %s", n, res.Stopped)
	}
	res.Trials = len(ins)
	res.Insert, res.Remove = summarise(ins), summarise(rem)
	progress("%d nodes: insert p50 %.1f ms p99 %.1f ms; remove p50 %.1f ms p99 %.1f ms",
		n, res.Insert.P50, res.Insert.P99, res.Remove.P50, res.Remove.P99)

	if res.Idle, err = c.idle(ctx, o.idle); err != nil {
		return nil, err
	}
	for _, nd := range c.nodes {
		ks := nd.k.Stats()
		res.Kernel.Reconnects += ks.Reconnects
		res.Kernel.QueueDrops += ks.QueueDrops
		res.Kernel.RejectedHandshake += ks.RejectedHandshake
		res.Kernel.CastsUnknownName += ks.CastsUnknownName
	}
	res.RingsAgreeEnd = c.agree()
	res.LoadAvg = loadAvg()
	for _, nd := range c.nodes {
		s := nd.r.Stats()
		res.EventsDropped += s.EventsDropped
		res.InboxDrops += s.InboxDrops
		res.RingRepairs += s.RingRepairs
		res.SendErrors += s.SendErrors
		res.MessagesSent += s.MessagesSent
	}
	return res, nil
}

// startNode starts a kernel and a ring in ring "bench". The UDP port
// memberlist needs (the kernel's port number) may be taken: then it
// retries with a new port, as memberlist's own transport does.
// mlName names the memberlist base config of -memberlist.
func mlName(flag string) string {
	if flag == "wan" {
		return "DefaultWANConfig"
	}
	return "DefaultLANConfig"
}

func startNode(ctx context.Context, id, cookie string, lazy bool, ml string, logger *slog.Logger) (*node, error) {
	var lastErr error
	for range 5 {
		k, err := kernel.New(kernel.Config{
			Node:   notp.Node{ID: id, Host: "127.0.0.1", Port: 0},
			Cookie: cookie,
			Logger: logger,
		})
		if err != nil {
			return nil, err
		}
		if err := k.Start(ctx); err != nil {
			return nil, err
		}
		r, err := gossip.New(k, gossip.Config{
			LazyConnect: lazy,
			Logger:      logger,
			// nil: memberlist.DefaultLANConfig(); every interval at its
			// default.
			Memberlist: mlBase(ml),
		})
		if err != nil {
			k.Close()
			return nil, err
		}
		// Subscribe before Start so no event is missed.
		events, cancel := r.Subscribe(4096)
		if err := r.Start(ctx, ringID); err != nil {
			cancel()
			_ = r.Stop(ctx)
			k.Close()
			if errors.Is(err, gossip.ErrUDPBind) {
				lastErr = err
				continue
			}
			return nil, err
		}
		return &node{k: k, r: r, events: events, cancel: cancel}, nil
	}
	return nil, lastErr
}

// add appends nd and starts reading its events.
func (c *cluster) add(nd *node) {
	i := len(c.nodes)
	c.nodes = append(c.nodes, nd)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for ev := range nd.events {
			c.w.observe(i, ev)
		}
	}()
}

// form has node i meet node 0 for every i, then waits until every ring
// holds all nodes and every memberlist sees them all alive.
func (c *cluster) form(ctx context.Context, o *options, res *result, progress func(string, ...any)) error {
	timeout := o.formTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n := len(c.nodes)
	start := time.Now()
	seed := c.nodes[0].k.Self()
	meets := make([]time.Duration, 0, n-1)
	var (
		mu      sync.Mutex
		meetErr error
		retries atomic.Int64
	)
	switch useInsertForm(o.form, n) {
	case true:
		// One change: node 0 inserts every other node. They are in ring
		// "bench" already, so they merge its gossip, and each joins
		// memberlist through random ring members on its next poll.
		res.Form = "minsert"
		others := make([]notp.Node, 0, n-1)
		for _, nd := range c.nodes[1:] {
			others = append(others, nd.k.Self())
		}
		if err := c.nodes[0].r.MInsert(ctx, others, 0, false); err != nil {
			return fmt.Errorf("node 0 inserts the others: %w", err)
		}
		progress("%d nodes: node 0 inserted the others in %.2f s", n, time.Since(start).Seconds())
	default:
		res.Form = "meet"
		parallel(n-1, o.meetWidth, func(i int) {
			t0 := time.Now()
			err := meet(ctx, c.nodes[i+1].r, seed, &retries)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				meetErr = cmp.Or(meetErr, fmt.Errorf("node %d meets node 0: %w", i+1, err))
				return
			}
			meets = append(meets, time.Since(t0))
		})
		if meetErr != nil {
			return meetErr
		}
		res.Meet = summarise(meets)
		res.MeetRetries = retries.Load()
		progress("%d nodes: %d Meet calls done in %.2f s", n, n-1, time.Since(start).Seconds())
	}
	next := time.Now().Add(10 * time.Second)
	if err := poll(ctx, 10*time.Millisecond, func() bool {
		if time.Now().After(next) {
			next = time.Now().Add(10 * time.Second)
			progress("%d nodes: waiting for the rings, sizes (size: rings) %v", n, c.sizes())
		}
		for _, nd := range c.nodes {
			if nd.r.View().NumberNodes() != n {
				return false
			}
		}
		return true
	}); err != nil {
		return fmt.Errorf("rings did not reach %d nodes within %v: %w (sizes %v)", n, timeout, err, c.sizes())
	}
	res.FormationS = time.Since(start).Seconds()
	// memberlist may not settle when many instances share two busy cores
	// (probes time out, members flap between suspect and alive): the wait
	// is bounded by -ml-timeout, then the trials run anyway.
	mlCtx, mlCancel := context.WithTimeout(ctx, o.mlTimeout)
	defer mlCancel()
	if err := poll(mlCtx, 20*time.Millisecond, func() bool {
		if time.Now().After(next) {
			next = time.Now().Add(10 * time.Second)
			progress("%d nodes: waiting for memberlist, members not alive: %d", n, c.notAlive())
		}
		return c.notAlive() == 0
	}); err != nil {
		if ctx.Err() != nil {
			return err
		}
		res.FormationMLS = -1
		res.MLNotAlive = c.notAlive()
		progress("%d nodes: memberlist not settled after %v (%d ring/member pairs not alive); running the trials anyway", n, o.mlTimeout, res.MLNotAlive)
		return nil
	}
	res.FormationMLS = time.Since(start).Seconds()
	return nil
}

// meet retries Meet a few times: a busy seed may refuse a join (its inbox
// full) or memberlist's join may time out.
func meet(ctx context.Context, r *gossip.Ring, seed notp.Node, retries *atomic.Int64) error {
	var err error
	for attempt := range 5 {
		if err = r.Meet(ctx, seed); err == nil || ctx.Err() != nil {
			return err
		}
		retries.Add(1)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

// poll calls cond every period until it holds or ctx ends.
func poll(ctx context.Context, period time.Duration, cond func() bool) error {
	t := time.NewTicker(period)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// errTrialTimeout: a convergence did not complete within -trial-timeout.
var errTrialTimeout = errors.New("convergence timed out")

// slowTrial is the convergence time above which a trial is described on
// stderr.
const slowTrial = 3 * time.Second

// describe says how the other nodes' memberlists see node i, and node i's
// own counters, to explain a slow or failed convergence.
func (c *cluster) describe(i int) string {
	nd := c.nodes[i]
	id := nd.k.Self().ID
	health := map[gossip.Health]int{}
	for j, other := range c.nodes {
		if j != i {
			health[other.r.Health(id)]++
		}
	}
	s := nd.r.Stats()
	behind := 0
	for j, other := range c.nodes {
		if j != i && !nd.r.Clock().Descends(other.r.Clock()) {
			behind++
		}
	}
	return fmt.Sprintf("%s (clock behind %d other nodes; sent %d, received %d, merged %d ring messages; seen by the others as alive %d, suspect %d, dead %d, left %d, unknown %d; its ring has %d nodes, its memberlist-alive peers %d; inbox drops %d, send errors %d, events dropped %d)",
		id, behind, s.MessagesSent, s.MessagesReceived, s.Merges, health[gossip.HealthAlive], health[gossip.HealthSuspect], health[gossip.HealthDead], health[gossip.HealthLeft],
		health[gossip.HealthUnknown], nd.r.View().NumberNodes(), c.aliveSeenBy(i), s.InboxDrops, s.SendErrors, s.EventsDropped)
}

// aliveSeenBy counts the members node i's memberlist reports alive.
func (c *cluster) aliveSeenBy(i int) int {
	alive := 0
	for _, m := range c.nodes[i].r.Members() {
		if m.Health == gossip.HealthAlive {
			alive++
		}
	}
	return alive
}

// notAlive counts the (ring, member) pairs whose health is not alive.
func (c *cluster) notAlive() int {
	bad := 0
	for _, nd := range c.nodes {
		for _, m := range nd.r.Members() {
			if m.Health != gossip.HealthAlive {
				bad++
			}
		}
	}
	return bad
}

func (c *cluster) sizes() map[int]int {
	out := map[int]int{}
	for _, nd := range c.nodes {
		out[nd.r.View().NumberNodes()]++
	}
	return out
}

// trial inserts a probe from a random node and waits for every ring to
// emit EventInserted for it, then removes it from a random node and waits
// for every EventRemoved.
func (c *cluster) trial(ctx context.Context, o *options, t int, rng *rand.Rand, progress func(string, ...any)) (ins, rem time.Duration, err error) {
	probe, stopProbe, err := newProbe(ctx, fmt.Sprintf("probe-%d", t), o)
	if err != nil {
		return 0, 0, err
	}
	defer stopProbe()
	n := len(c.nodes)

	measure := func(kind gossip.EventKind, op func(context.Context, *gossip.Ring) error) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, o.trialTimeout)
		defer cancel()
		origin := c.nodes[rng.IntN(n)]
		done := c.w.arm(probe.ID, kind, n)
		start := time.Now()
		if err := op(ctx, origin.r); err != nil {
			return 0, err
		}
		select {
		case <-done:
		case <-ctx.Done():
			_, _, missing := c.w.result()
			var why []string
			holding := 0
			for _, i := range missing {
				if c.nodes[i].r.View().Has(probe.ID) == (kind == gossip.EventInserted) {
					holding++
				}
			}
			why = append(why, fmt.Sprintf("%d of the %d rings without the event already show the change", holding, len(missing)))
			if len(missing) > 0 {
				// Is the first missing ring still gossiping? Sample its
				// counters over 2 s.
				s0 := c.nodes[missing[0]].r.Stats()
				time.Sleep(2 * time.Second)
				s1 := c.nodes[missing[0]].r.Stats()
				why = append(why, fmt.Sprintf("over 2 s %s sent %d, received %d, merged %d, rejected %d ring messages",
					c.nodes[missing[0]].k.Self().ID, s1.MessagesSent-s0.MessagesSent, s1.MessagesReceived-s0.MessagesReceived,
					s1.Merges-s0.Merges, s1.MessagesRejected-s0.MessagesRejected))
			}
			for _, i := range missing[:min(len(missing), 5)] {
				why = append(why, c.describe(i))
			}
			return 0, fmt.Errorf("%w: %v events from %d of %d rings missing after %v: %s", errTrialTimeout, kind, len(missing), n, o.trialTimeout, strings.Join(why, "; "))
		}
		last, lastNode, _ := c.w.result()
		d := last.Sub(start)
		if d > slowTrial {
			progress("trial %d: %v took %.2f s; the last ring was %s", t, kind, d.Seconds(), c.describe(lastNode))
		}
		return d, nil
	}
	ins, err = measure(gossip.EventInserted, func(ctx context.Context, r *gossip.Ring) error {
		return r.Insert(ctx, probe, 0, false)
	})
	if err != nil {
		// Take the probe out again (not measured) so it does not linger
		// in the rings during the idle measurement.
		rctx, cancel := context.WithTimeout(ctx, o.trialTimeout)
		_ = c.nodes[0].r.Remove(rctx, probe, true)
		cancel()
		return 0, 0, fmt.Errorf("insert: %w", err)
	}
	for i, nd := range c.nodes {
		if !nd.r.View().Has(probe.ID) {
			return 0, 0, fmt.Errorf("node %d emitted EventInserted but its ring lacks %s", i, probe.ID)
		}
	}
	// force: the probe is not running (with -probe dead), so a graceful
	// disconnect would wait for its queued messages until ctx ends; force
	// only drops messages queued for the removed node.
	rem, err = measure(gossip.EventRemoved, func(ctx context.Context, r *gossip.Ring) error {
		return r.Remove(ctx, probe, true)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("remove: %w", err)
	}
	for i, nd := range c.nodes {
		if nd.r.View().Has(probe.ID) {
			return 0, 0, fmt.Errorf("node %d emitted EventRemoved but its ring holds %s", i, probe.ID)
		}
	}
	return ins, rem, nil
}

// newProbe returns the node to insert: with -probe dead an unused
// 127.0.0.1 port (nothing listens there; kernels trying to connect get
// refused and retry with backoff until the probe is removed), with -probe
// live a running kernel with that ID that is in no ring (ring messages to
// it are counted there as casts to an unknown name).
func newProbe(ctx context.Context, id string, o *options) (notp.Node, func(), error) {
	if o.probe == "live" {
		k, err := kernel.New(kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: o.cookie})
		if err != nil {
			return notp.Node{}, nil, err
		}
		if err := k.Start(ctx); err != nil {
			return notp.Node{}, nil, err
		}
		return k.Self(), func() { k.Close() }, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return notp.Node{}, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return notp.Node{ID: id, Host: "127.0.0.1", Port: port}, func() {}, nil
}

// idle measures the traffic of the formed cluster over d with no changes.
func (c *cluster) idle(ctx context.Context, d time.Duration) (idle, error) {
	type snap struct {
		kBytes, kRecords, ringMsgs uint64
		ml                         gossip.TransportStats
		at                         time.Time
	}
	take := func() snap {
		var s snap
		for _, nd := range c.nodes {
			ks := nd.k.Stats()
			s.kBytes += ks.BytesOut
			s.kRecords += ks.RecordsOut
			s.ringMsgs += nd.r.Stats().MessagesSent
		}
		s.ml = gossip.TransportTotals()
		s.at = time.Now()
		return s
	}
	a := take()
	select {
	case <-ctx.Done():
		return idle{}, ctx.Err()
	case <-time.After(d):
	}
	b := take()
	secs := b.at.Sub(a.at).Seconds()
	per := func(x, y uint64) float64 { return float64(y-x) / float64(len(c.nodes)) / secs }
	out := idle{
		Seconds:        secs,
		KernelBytes:    per(a.kBytes, b.kBytes),
		UDPBytes:       per(a.ml.PacketBytesOut, b.ml.PacketBytesOut),
		StreamBytes:    per(a.ml.StreamBytesOut, b.ml.StreamBytesOut),
		UDPPackets:     per(a.ml.PacketsOut, b.ml.PacketsOut),
		KernelRecords:  per(a.kRecords, b.kRecords),
		RingMessages:   per(a.ringMsgs, b.ringMsgs),
		MemberlistPull: per(a.ml.StreamsOut, b.ml.StreamsOut),
	}
	out.BytesPerNodeS = out.KernelBytes + out.UDPBytes + out.StreamBytes
	return out, nil
}

// agree reports whether every ring holds the same nodes.
func (c *cluster) agree() bool {
	first := c.nodes[0].r.View()
	for _, nd := range c.nodes[1:] {
		if !nd.r.View().Equal(first) {
			return false
		}
	}
	return true
}

// usage measures the process's footprint.
func (c *cluster) usage() usage {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	links := 0
	for _, nd := range c.nodes {
		links += len(nd.k.Peers())
	}
	return usage{
		Goroutines: runtime.NumGoroutine(),
		OpenFDs:    openFDs(),
		FDLimit:    fdLimit(),
		HeapMB:     float64(m.HeapAlloc) / (1 << 20),
		SysMB:      float64(m.Sys) / (1 << 20),
		KernelLink: links,
	}
}

// stop stops every ring, then closes every kernel, a few at a time, and
// waits for the event readers.
func (c *cluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	parallel(len(c.nodes), 32, func(i int) { _ = c.nodes[i].r.Stop(ctx) })
	parallel(len(c.nodes), 32, func(i int) { _ = c.nodes[i].k.Close() })
	for _, nd := range c.nodes {
		nd.cancel()
	}
	c.wg.Wait()
}

// parallel runs f(0..n-1) on at most width goroutines.
func parallel(n, width int, f func(int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// summarise returns nearest-rank p50 and p99, the maximum and the mean of
// ds in milliseconds.
func summarise(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return dist{P50: ms(rank(0.50)), P99: ms(rank(0.99)), Max: ms(s[len(s)-1]), Mean: ms(sum / time.Duration(len(s)))}
}

// mlBase is the memberlist base config of -memberlist: nil (gossip's
// default, DefaultLANConfig) or DefaultWANConfig.
func mlBase(flag string) *memberlist.Config {
	if flag == "wan" {
		return memberlist.DefaultWANConfig()
	}
	return nil
}
