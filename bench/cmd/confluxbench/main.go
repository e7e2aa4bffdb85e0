// Command confluxbench measures conflux against raw hashicorp/raft with the
// same storage, timings and transport: three nodes in one process on
// loopback, performers on the leader, 128-byte commands.
//
// Systems:
//
//   - conflux: Store.Perform of a method whose action is the 128-byte
//     argument (run, msgpack-encode, append, commit, reduce, local apply);
//   - raw: raft.Apply of 128 bytes to a counting FSM, over the same
//     kernel authenticated streams (cookie handshake, AES-GCM records) as
//     conflux's transport, with the same raft.Config (except
//     BatchApplyCh, which conflux sets and raw leaves at raft's default);
//   - raw-tcp: the same over raft.NewTCPTransport (plain TCP), for the
//     cost of the authenticated streams.
//
// Storage: mem (raft.InmemStore) or disk (raft-boltdb/v2 with fsync,
// behind a 512-entry log cache, plus file snapshots). Both systems check
// for a snapshot every -snapshot-interval (default 1 s), so that the log
// an in-memory round starts from is about the same size each time.
//
// For each storage it starts all systems, then for each performer count
// (-clients, default 1,64) measures them in turns for -rounds rounds of
// -duration (default 3 rounds of 3 s) after a short warmup, and prints
// the median round's commits/s, p50 and p99 commit latency, and the
// process's CPU time per commit in that round (cpu/op: the work a commit
// takes, including the idle systems' heartbeats; on a loaded machine it
// moves too, as batches shrink and idle threads spin).
// Performers always act on the system's current leader: a leader change
// (a loaded machine can miss heartbeats) is followed and reported on
// stderr. -cpuprofile, -blockprofile and -memprofile (allocations, for
// go tool pprof -sample_index=alloc_space or alloc_objects) profile the
// whole run.
//
// Usage:
//
//	go run ./cmd/confluxbench -storage mem,disk -clients 1,64 -rounds 3 -duration 3s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/conflux"
	"github.com/notp-go/notp/kernel"
)

const cookie = "confluxbench cookie 0123456789abcdef"

func main() {
	storages := flag.String("storage", "mem,disk", "storages to run: mem, disk")
	systems := flag.String("systems", "conflux,raw,raw-tcp", "systems to run: conflux, raw, raw-tcp")
	clients := flag.String("clients", "1,64", "performer counts")
	duration := flag.Duration("duration", 3*time.Second, "measuring time per round")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	blockprofile := flag.String("blockprofile", "", "write a blocking profile of the whole run to this file")
	memprofile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space)")
	flag.Parse()
	if *memprofile != "" {
		defer func() {
			f, err := os.Create(*memprofile)
			if err == nil {
				pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *blockprofile != "" {
		runtime.SetBlockProfileRate(10000)
		defer func() {
			f, err := os.Create(*blockprofile)
			if err == nil {
				pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		}()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	var counts []int
	for _, c := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bad -clients")
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	fmt.Printf("%-5s %-8s %7s %10s %9s %9s %9s\n", "store", "system", "clients", "commits/s", "p50", "p99", "cpu/op")
	for _, st := range strings.Split(*storages, ",") {
		if err := runStorage(st, strings.Split(*systems, ","), counts, *duration, *rounds); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", st, err)
			pprof.StopCPUProfile()
			os.Exit(1) // the profiles of a failed run are not written
		}
	}
}

// snapshotInterval is both systems' SnapshotInterval. In memory, the log
// kept between snapshots is heap the garbage collector scans: at 50k+
// commits/s a long interval lets it reach hundreds of thousands to
// millions of entries, and every round then lands in a fast or a slow
// mode (up to 3x apart, for either system) depending on when the last
// snapshot fell. At 1 s each round starts from about the same log.
var snapshotInterval = flag.Duration("snapshot-interval", time.Second, "both systems' SnapshotInterval (how often Raft checks whether 8192 new entries call for a snapshot and compaction; conflux's default is 5s); longer intervals let the in-memory log grow, and rounds swing with the garbage collector's work")

var verbose = flag.Bool("v", false, "print every round on stderr")

var rounds = flag.Int("rounds", 3, "measuring rounds per row; the systems take turns, round by round, so that a machine whose load drifts treats them alike; the median round is printed")

// applier commits one 128-byte command.
type applier func(ctx context.Context, cmd []byte) error

// runStorage starts every system on storage at once (idle ones cost
// little) and measures them in turns.
func runStorage(storage string, systems []string, counts []int, d time.Duration, rounds int) error {
	dir, err := os.MkdirTemp("", "confluxbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	appliers := map[string]applier{}
	for _, system := range systems {
		var apply applier
		var stop func()
		sdir := filepath.Join(dir, system)
		switch system {
		case "conflux":
			apply, stop, err = startConflux(storage, sdir)
		case "raw", "raw-tcp":
			apply, stop, err = startRaw(storage, sdir, system == "raw-tcp")
		default:
			err = fmt.Errorf("unknown system %q", system)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", system, err)
		}
		defer stop()
		appliers[system] = apply
	}
	type result struct {
		rate          float64
		p50, p99, cpu time.Duration
	}
	for _, c := range counts {
		res := map[string][]result{}
		for _, system := range systems {
			measure(appliers[system], c, time.Second) // warmup
		}
		for range max(rounds, 1) {
			for _, system := range systems {
				rate, p50, p99, cpu := measure(appliers[system], c, d)
				if *verbose {
					fmt.Fprintf(os.Stderr, "round: %-5s %-8s %7d %10.0f %9s %9s %9s\n", storage, system, c, rate, p50, p99, cpu)
				}
				res[system] = append(res[system], result{rate, p50, p99, cpu})
			}
		}
		for _, system := range systems {
			rs := res[system]
			slices.SortFunc(rs, func(a, b result) int { return cmpFloat(a.rate, b.rate) })
			m := rs[len(rs)/2]
			fmt.Printf("%-5s %-8s %7d %10.0f %9s %9s %9s\n", storage, system, c, m.rate, m.p50, m.p99, m.cpu)
		}
	}
	return nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// measure runs c performers for d and returns commits/s, p50 and p99.
func measure(apply applier, c int, d time.Duration) (rate float64, p50, p99, cpuPerOp time.Duration) {
	var (
		mu   sync.Mutex
		lats []time.Duration
		n    atomic.Int64
		wg   sync.WaitGroup
	)
	cmd := make([]byte, 128)
	cpu0 := cpuTime()
	end := time.Now().Add(d)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				t := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := apply(ctx, cmd)
				cancel()
				if err != nil {
					continue
				}
				mine = append(mine, time.Since(t))
				n.Add(1)
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	slices.Sort(lats)
	if len(lats) == 0 {
		return 0, 0, 0, 0
	}
	q := func(p float64) time.Duration { return lats[int(p*float64(len(lats)-1))].Round(time.Microsecond) }
	return float64(n.Load()) / el.Seconds(), q(0.50), q(0.99), (cpu / time.Duration(n.Load())).Round(100 * time.Nanosecond)
}

// cpuTime returns the CPU time (user and system) the process has used.
// Per commit it is the work a commit takes, the idle systems' heartbeats
// and gossip included, alike for each system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// busyPoll is the kernels' polling setting (-poll=false: off).
func busyPoll() time.Duration {
	if *poll {
		return 0
	}
	return kernel.BusyPollOff
}

var poll = flag.Bool("poll", true, "kernels busy-poll their connections (their default); false turns it off")

// The raft settings both systems share: conflux's defaults, but for
// SnapshotInterval (-snapshot-interval).
func raftConfig(id string) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(id)
	c.HeartbeatTimeout, c.ElectionTimeout = time.Second, time.Second
	c.LeaderLeaseTimeout, c.CommitTimeout = 500*time.Millisecond, 10*time.Millisecond
	c.SnapshotThreshold, c.SnapshotInterval, c.TrailingLogs = 8192, *snapshotInterval, 4096
	c.Logger = hclog.NewNullLogger()
	return c
}

// ---- conflux ----

func startConflux(storage, dir string) (applier, func(), error) {
	var nodes []*cluster.Node
	var stores []*conflux.Store[int, []byte]
	stop := func() {
		for _, s := range stores {
			s.Stop(context.Background())
		}
		for _, n := range nodes {
			n.Stop(context.Background())
		}
	}
	ctx := context.Background()
	for i := range 3 {
		n, err := cluster.New(cluster.Config{Node: notp.Node{ID: fmt.Sprintf("n%d", i), Host: "127.0.0.1"}, Cookie: cookie,
			Kernel: kernel.Config{BusyPoll: busyPoll()}})
		if err != nil {
			stop()
			return nil, nil, err
		}
		if err := n.Start(ctx, "bench"); err != nil {
			stop()
			return nil, nil, err
		}
		nodes = append(nodes, n)
		if i > 0 {
			if err := nodes[0].Ring().Meet(ctx, n.Self()); err != nil {
				stop()
				return nil, nil, err
			}
		}
	}
	for i, n := range nodes {
		st := conflux.InMemory()
		if storage == "disk" {
			st = conflux.OnDisk(filepath.Join(dir, fmt.Sprint(i)))
		}
		s, err := conflux.New(n, conflux.Config[int, []byte]{
			Name:   "bench",
			Reduce: func(s int, _ []byte) int { return s + 1 },
			Methods: map[string]conflux.Method[int, []byte]{
				"put": func(_ int, args []byte) ([]byte, error) { return args, nil },
			},
			Storage: st, BootstrapExpect: 3, SnapshotInterval: *snapshotInterval,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			stop()
			return nil, nil, err
		}
		if err := s.Start(ctx); err != nil {
			stop()
			return nil, nil, err
		}
		stores = append(stores, s)
	}
	leader := -1
	deadline := time.Now().Add(30 * time.Second)
	for leader < 0 {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("no leader")
		}
		time.Sleep(20 * time.Millisecond)
		leader = confluxLeader(nodes, stores)
	}
	// Perform on the leader, as raw applies on its leader: a follower
	// would forward each Perform, which measures forwarding instead. A
	// watcher follows leader changes (a loaded machine can miss a
	// heartbeat), so the performers never check.
	var cur atomic.Pointer[conflux.Store[int, []byte]]
	cur.Store(stores[leader])
	quit, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if i := confluxLeader(nodes, stores); i >= 0 && stores[i] != cur.Load() {
				fmt.Fprintf(os.Stderr, "conflux: leader moved to %s\n", nodes[i].Self().ID)
				cur.Store(stores[i])
			}
		}
	}()
	stopAll := func() {
		close(quit)
		<-watched
		stop()
	}
	return func(ctx context.Context, cmd []byte) error {
		_, err := cur.Load().Perform(ctx, "put", cmd)
		return err
	}, stopAll, nil
}

// confluxLeader returns the index of the store that leads, -1 if none.
func confluxLeader(nodes []*cluster.Node, stores []*conflux.Store[int, []byte]) int {
	for i, s := range stores {
		if l, ok := s.Leader(); ok && l.ID == nodes[i].Self().ID {
			return i
		}
	}
	return -1
}

// ---- raw raft ----

type countFSM struct{ n atomic.Int64 }

func (f *countFSM) Apply(*raft.Log) any { f.n.Add(1); return nil }
func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	return snap(f.n.Load()), nil
}
func (f *countFSM) Restore(r io.ReadCloser) error { return r.Close() }

type snap int64

func (s snap) Persist(sink raft.SnapshotSink) error {
	fmt.Fprint(sink, int64(s))
	return sink.Close()
}
func (snap) Release() {}

func startRaw(storage, dir string, plainTCP bool) (applier, func(), error) {
	var rafts []*raft.Raft
	var closers []func()
	stop := func() {
		for _, r := range rafts {
			r.Shutdown().Error()
		}
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	var trans []raft.Transport
	var addrs []raft.ServerAddress
	for i := range 3 {
		var t raft.Transport
		var addr raft.ServerAddress
		if plainTCP {
			nt, err := raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
			if err != nil {
				stop()
				return nil, nil, err
			}
			t, addr = nt, nt.LocalAddr()
			closers = append(closers, func() { nt.Close() })
		} else {
			k, err := kernel.New(kernel.Config{Node: notp.Node{ID: fmt.Sprintf("r%d", i), Host: "127.0.0.1"}, Cookie: cookie, BusyPoll: busyPoll()})
			if err != nil {
				stop()
				return nil, nil, err
			}
			if err := k.Start(context.Background()); err != nil {
				stop()
				return nil, nil, err
			}
			closers = append(closers, func() { k.Close() })
			l, err := newKernelLayer(k)
			if err != nil {
				stop()
				return nil, nil, err
			}
			nt := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
				Stream: l, MaxPool: 3, Timeout: 10 * time.Second, Logger: hclog.NewNullLogger(),
			})
			t, addr = nt, nt.LocalAddr()
			closers = append(closers, func() { nt.Close() })
		}
		trans = append(trans, t)
		addrs = append(addrs, addr)
	}
	var cfg raft.Configuration
	for i, a := range addrs {
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("r%d", i)), Address: a})
	}
	for i := range 3 {
		var logs raft.LogStore
		var stable raft.StableStore
		var snaps raft.SnapshotStore
		if storage == "disk" {
			d := filepath.Join(dir, fmt.Sprint(i))
			os.MkdirAll(d, 0o700)
			bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(d, "raft.db")})
			if err != nil {
				stop()
				return nil, nil, err
			}
			closers = append(closers, func() { bolt.Close() })
			cache, _ := raft.NewLogCache(512, bolt)
			fs, err := raft.NewFileSnapshotStore(d, 2, io.Discard)
			if err != nil {
				stop()
				return nil, nil, err
			}
			logs, stable, snaps = cache, bolt, fs
		} else {
			mem := raft.NewInmemStore()
			logs, stable, snaps = mem, mem, raft.NewInmemSnapshotStore()
		}
		rc := raftConfig(fmt.Sprintf("r%d", i))
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans[i], cfg); err != nil {
			stop()
			return nil, nil, err
		}
		r, err := raft.NewRaft(rc, &countFSM{}, logs, stable, snaps, trans[i])
		if err != nil {
			stop()
			return nil, nil, err
		}
		rafts = append(rafts, r)
	}
	var leader *raft.Raft
	deadline := time.Now().Add(30 * time.Second)
	for leader == nil {
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("no leader")
		}
		time.Sleep(20 * time.Millisecond)
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader = r
			}
		}
	}
	var cur atomic.Pointer[raft.Raft]
	cur.Store(leader)
	return func(ctx context.Context, cmd []byte) error {
		err := cur.Load().Apply(cmd, 0).Error()
		if err != nil { // follow a leader change
			for i, r := range rafts {
				if r.State() == raft.Leader && r != cur.Load() {
					fmt.Fprintf(os.Stderr, "raw: leader moved to r%d\n", i)
					cur.Store(r)
				}
			}
		}
		return err
	}, stop, nil
}
