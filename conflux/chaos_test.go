package conflux

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/notp-go/notp/cluster"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/internal/faultnet"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

var chaosTime = flag.Duration("conflux.chaos", 10*time.Second, "how long each linearizability run injects faults (longer runs for soak testing)")

// The chaos tests' state: three registers, so porcupine can check each
// key on its own.
type regs [3]int

type regAct struct {
	K   int  `msgpack:"k"`
	V   int  `msgpack:"v"`
	Get bool `msgpack:"g"`
}

func regMethods() map[string]Method[regs, regAct] {
	return map[string]Method[regs, regAct]{
		"put": func(s regs, args []byte) (regAct, error) {
			var a regAct
			if err := msgpack.Unmarshal(args, &a); err != nil || a.K < 0 || a.K >= len(s) {
				return regAct{}, fmt.Errorf("bad put %v", err)
			}
			return regAct{K: a.K, V: a.V}, nil
		},
		// get reads through the log: its action carries the value the
		// key has at its position in the log.
		"get": func(s regs, args []byte) (regAct, error) {
			var k int
			if err := msgpack.Unmarshal(args, &k); err != nil || k < 0 || k >= len(s) {
				return regAct{}, fmt.Errorf("bad get %v", err)
			}
			return regAct{K: k, V: s[k], Get: true}, nil
		},
	}
}

func reduceRegs(s regs, a regAct) regs {
	if !a.Get && a.K >= 0 && a.K < len(s) {
		s[a.K] = a.V
	}
	return s
}

type regInput struct {
	k, v int
	put  bool
}

var regModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		var by [3][]porcupine.Operation
		for _, op := range h {
			k := op.Input.(regInput).k
			by[k] = append(by[k], op)
		}
		return by[:]
	},
	Init: func() any { return 0 },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.put {
			return true, in.v
		}
		return output.(int) == state.(int), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.put {
			return fmt.Sprintf("put(%d, %d)", in.k, in.v)
		}
		return fmt.Sprintf("get(%d) -> %v", in.k, output)
	},
}

// readMode is how the chaos clients read.
type readMode int

const (
	readLog   readMode = iota // Perform("get"): through the log
	readIndex                 // Read(Linearizable)
	readStale                 // State() of any node: not linearizable
)

// chaosNode is a node on a faultnet host whose store can crash and
// restart on its in-memory storage.
type chaosNode struct {
	n       *cluster.Node
	addr    netip.Addr
	storage Storage
	mu      sync.Mutex
	s       *Store[regs, regAct] // nil while crashed
}

func (c *chaosNode) store() *Store[regs, regAct] {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s
}

func regConfig(t testing.TB, st Storage) Config[regs, regAct] {
	return Config[regs, regAct]{
		Name: "regs", Methods: regMethods(), Reduce: reduceRegs, Storage: st,
		BootstrapExpect:  3,
		HeartbeatTimeout: 400 * time.Millisecond, ElectionTimeout: 400 * time.Millisecond,
		LeaderLeaseTimeout: 200 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		SnapshotThreshold: 256, TrailingLogs: 64, SnapshotInterval: 200 * time.Millisecond,
		PerformTimeout: 2 * time.Second, ReconcileInterval: 300 * time.Millisecond,
		Logger: testLogger(t),
	}
}

func (c *chaosNode) start(t testing.TB) {
	s, err := New(c.n, regConfig(t, c.storage))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.s = s
	c.mu.Unlock()
}

func (c *chaosNode) crash() {
	c.mu.Lock()
	s := c.s
	c.s = nil
	c.mu.Unlock()
	if s != nil {
		s.Stop(context.Background())
	}
}

var chaosHost atomic.Int32

func startChaos(t *testing.T) (*faultnet.Network, []*chaosNode) {
	fn := faultnet.New(1)
	t.Cleanup(func() { fn.Close() })
	var ns []*chaosNode
	for i := range 3 {
		h, err := fn.Host(faultnet.Loopback(200 + int(chaosHost.Add(1))%50))
		if err != nil {
			t.Fatal(err)
		}
		n := startNode(t, fmt.Sprintf("c%d", i), func(c *cluster.Config) {
			c.Node.Host = h.Addr().String()
			c.Kernel = kernel.Config{Listen: h.Listen, Dial: h.Dial, ReconnectMax: 200 * time.Millisecond}
			c.Gossip.ListenPacket = h.ListenPacket
			c.Gossip.Reconnect = gossip.ReconnectConfig{First: 300 * time.Millisecond, Interval: 2 * time.Second}
		})
		ns = append(ns, &chaosNode{n: n, addr: h.Addr(), storage: InMemory()})
		if i > 0 {
			meet(t, ns[0].n, n)
		}
	}
	for _, c := range ns {
		c.start(t)
		t.Cleanup(c.crash)
	}
	waitFor(t, "a leader", func() bool {
		for _, c := range ns {
			if _, ok := c.store().Leader(); !ok {
				return false
			}
		}
		return true
	})
	return fn, ns
}

// runChaos runs clients against the group while a nemesis partitions,
// crashes and restarts nodes about once a second, and returns the
// history and the number of faults.
func runChaos(t *testing.T, mode readMode, d time.Duration) ([]porcupine.Operation, int) {
	fn, ns := startChaos(t)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu   sync.Mutex
		hist []porcupine.Operation
		next atomic.Int64
	)
	record := func(op porcupine.Operation) {
		mu.Lock()
		hist = append(hist, op)
		mu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for client := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(client), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := ns[rng.IntN(len(ns))].store()
				if s == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				k := rng.IntN(3)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				if rng.IntN(2) == 0 {
					v := int(next.Add(1))
					call := now()
					_, err := s.Perform(ctx, "put", regAct{K: k, V: v})
					ret := now()
					switch {
					case err == nil:
					case errors.Is(err, ErrNoLeader), errors.Is(err, ErrOverloaded):
						cancel()
						continue // nothing was appended
					default:
						ret = math.MaxInt64 // may take effect at any time later
					}
					record(porcupine.Operation{ClientId: client, Input: regInput{k: k, v: v, put: true}, Call: call, Return: ret, Output: 0})
				} else {
					call := now()
					var v int
					var err error
					switch mode {
					case readLog:
						var a regAct
						a, err = s.Perform(ctx, "get", k)
						v = a.V
					case readIndex:
						var st regs
						st, err = s.Read(ctx, Linearizable)
						v = st[k]
					case readStale:
						v = s.State()[k]
					}
					ret := now()
					if err == nil {
						record(porcupine.Operation{ClientId: client, Input: regInput{k: k}, Call: call, Return: ret, Output: v})
					}
				}
				cancel()
			}
		}()
	}
	faults := nemesis(t, fn, ns, d, mode == readStale)
	// On a loaded machine the faults may leave too little time with a
	// leader for the history to mean anything: the clients go on against
	// the healed group until it holds enough operations of both kinds, or
	// a minute has passed (checkChaos then fails on the counts).
	enough := func() bool {
		mu.Lock()
		defer mu.Unlock()
		puts, gets := countOps(hist)
		return puts >= minChaosOps && gets >= minChaosOps
	}
	for deadline := time.Now().Add(time.Minute); !enough() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	return hist, faults
}

// nemesis injects a fault every 0.5-1.5 s for d: isolating a node, healing,
// crashing a store, restarting crashed stores. staleBait keeps to
// isolating and healing, which lets a stale reader see old values.
func nemesis(t *testing.T, fn *faultnet.Network, ns []*chaosNode, d time.Duration, staleBait bool) int {
	rng := rand.New(rand.NewPCG(42, 1))
	faults := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		time.Sleep(500*time.Millisecond + time.Duration(rng.IntN(1000))*time.Millisecond)
		faults++
		choice := rng.IntN(4)
		if staleBait {
			choice = faults % 2
		}
		switch choice {
		case 0:
			x := rng.IntN(len(ns))
			var rest []netip.Addr
			for i, c := range ns {
				if i != x {
					rest = append(rest, c.addr)
				}
			}
			fn.Partition([]netip.Addr{ns[x].addr}, rest)
			t.Logf("nemesis: isolate %s", ns[x].n.Self().ID)
		case 1:
			fn.Heal()
			t.Logf("nemesis: heal")
		case 2:
			c := ns[rng.IntN(len(ns))]
			c.crash()
			t.Logf("nemesis: crash %s", c.n.Self().ID)
		case 3:
			for _, c := range ns {
				if c.store() == nil {
					c.start(t)
					t.Logf("nemesis: restart %s", c.n.Self().ID)
				}
			}
		}
	}
	fn.Heal()
	for _, c := range ns {
		if c.store() == nil {
			c.start(t)
		}
	}
	return faults
}

// minChaosOps is how many writes and how many reads a history needs for
// the linearizability check to mean something.
const minChaosOps = 50

// countOps counts the writes and the reads of a history.
func countOps(hist []porcupine.Operation) (puts, gets int) {
	for _, op := range hist {
		if op.Input.(regInput).put {
			puts++
		} else {
			gets++
		}
	}
	return puts, gets
}

func checkChaos(t *testing.T, mode readMode, want porcupine.CheckResult) {
	hist, faults := runChaos(t, mode, *chaosTime)
	begin := time.Now()
	res := porcupine.CheckOperationsTimeout(regModel, hist, 30*time.Second)
	puts, gets := countOps(hist)
	t.Logf("porcupine: %d operations (%d puts, %d reads), %d faults: %s in %v", len(hist), puts, gets, faults, res, time.Since(begin).Round(time.Millisecond))
	if gets < minChaosOps || puts < minChaosOps {
		t.Fatalf("too few operations completed (%d puts, %d reads) to mean anything", puts, gets)
	}
	if res != want {
		t.Fatalf("porcupine says %s, want %s", res, want)
	}
}

// Writes and log reads stay linearizable under partitions, crashes and
// restarts.
func TestLinearizablePerform(t *testing.T) { checkChaos(t, readLog, porcupine.Ok) }

// Writes and ReadIndex reads stay linearizable under the same faults.
func TestLinearizableRead(t *testing.T) { checkChaos(t, readIndex, porcupine.Ok) }

// Reading any node's local state is not linearizable, and the checker
// says so: the check above has teeth.
func TestStaleReadsCaught(t *testing.T) { checkChaos(t, readStale, porcupine.Illegal) }
