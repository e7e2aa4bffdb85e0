// Command gossipbench measures how fast a notp gossip ring converges.
//
// For each cluster size in -nodes it starts that many nodes in this process,
// each a kernel (127.0.0.1, port 0, a shared cookie) with a gossip.Ring on
// it (memberlist's DefaultLANConfig: gossip.Config.Memberlist is nil; every
// other interval at its default), all in ring "bench", and forms the cluster.
// -form auto (the default) has node i meet node 0 (-meet-parallel at a time)
// up to 50 nodes; above that node 0 inserts all the others with one MInsert
// (each Meet spreads the whole ring state, O(N³) bytes in all), and the
// others join memberlist through their ring members on their own. It
// reports:
//
//   - setup and formation: the time to start the nodes, until every ring
//     holds all N nodes, and until every memberlist reports all of them alive
//     (bounded by -ml-timeout; the trials then run anyway);
//   - insert convergence, over -trials trials: a random node inserts a probe
//     node (one not running: an unused 127.0.0.1 port) and the time from just
//     before Insert until the last of the N rings emits EventInserted for it
//     (event timestamps);
//   - remove convergence: a random node removes the probe; the time until the
//     last ring emits EventRemoved;
//   - idle traffic: with no changes, the bytes every node sends per second
//     over -idle: the kernels' written record bytes (kernel.Stats.BytesOut)
//     plus memberlist's UDP and stream payload bytes (counted process-wide by
//     gossip.TransportTotals, since gossip keeps its transports private).
//
// p50 and p99 are nearest-rank percentiles; with fewer than 100 trials p99
// is the maximum. The trials of one size stop early, and the result says
// why, when a convergence takes longer than -trial-timeout or when -budget
// has run out. Kernel links follow -lazy: "auto" (default) uses
// gossip.Config.LazyConnect only when a full mesh would need more than half
// the process's file descriptor limit (2·N·(N−1) descriptors in one process).
//
// Usage (from bench/):
//
//	go run ./cmd/gossipbench -nodes 10,50,200 -trials 20 -idle 10s [-json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	nodes        []int
	trials       int
	idle         time.Duration
	jsonOut      bool
	lazy         string // "auto", "true" or "false"
	memberlist   string // "lan" or "wan": memberlist's base config
	probe        string // "dead" or "live"
	cookie       string
	formTimeout  time.Duration
	mlTimeout    time.Duration
	budget       time.Duration // no new trial starts after this long
	meetWidth    int           // concurrent Meet calls during formation
	form         string        // "auto", "meet" or "insert"
	trialTimeout time.Duration
	seed         uint64
	verbose      bool
	cpuProfile   string
}

// run is main without os.Exit, so the test can drive it. It returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "gossipbench:", err)
		return 2
	}
	logger := slog.New(slog.DiscardHandler)
	if o.verbose {
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "gossipbench: "+format+"\n", a...)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "gossipbench:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "gossipbench:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var results []*result
	status := 0
	for _, n := range o.nodes {
		res, err := runSize(ctx, o, n, logger, progress)
		if err != nil {
			fmt.Fprintf(stderr, "gossipbench: %d nodes: %v\n", n, err)
			status = 1
			if ctx.Err() != nil {
				break
			}
			continue
		}
		results = append(results, res)
		if o.jsonOut {
			b, err := json.Marshal(res)
			if err != nil {
				fmt.Fprintln(stderr, "gossipbench:", err)
				return 1
			}
			fmt.Fprintf(stdout, "%s\n", b)
		}
	}
	if !o.jsonOut && len(results) > 0 {
		printTable(stdout, results)
	}
	return status
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("gossipbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	nodes := fs.String("nodes", "10,50,200", "comma-separated cluster sizes (each ≥ 2)")
	fs.IntVar(&o.trials, "trials", 20, "insert/remove trials per cluster size")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "idle traffic measurement period")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per cluster size instead of a table")
	fs.StringVar(&o.lazy, "lazy", "auto", "gossip LazyConnect: auto, true or false")
	fs.StringVar(&o.memberlist, "memberlist", "lan", "memberlist base config: lan (DefaultLANConfig) or wan (DefaultWANConfig: 5 s probes, 3 s probe timeout — lighter for hundreds of nodes in one process)")
	fs.StringVar(&o.probe, "probe", "dead", "inserted probe node: dead (an unused port) or live (a running kernel outside the ring)")
	fs.StringVar(&o.cookie, "cookie", "gossipbench cluster cookie", "cluster cookie")
	fs.DurationVar(&o.formTimeout, "form-timeout", 2*time.Minute, "deadline for forming the cluster")
	fs.StringVar(&o.form, "form", "auto", "cluster formation: meet (node i meets node 0), insert (node 0 inserts all others at once) or auto (meet up to 50 nodes)")
	fs.DurationVar(&o.budget, "budget", 90*time.Second, "time for the trials of one cluster size; no new trial starts after it")
	fs.DurationVar(&o.mlTimeout, "ml-timeout", 15*time.Second, "how long to wait, after the rings formed, for every memberlist to see every node alive")
	fs.IntVar(&o.meetWidth, "meet-parallel", 4, "concurrent Meet calls while forming the cluster")
	fs.DurationVar(&o.trialTimeout, "trial-timeout", 20*time.Second, "deadline of each insert or remove convergence")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed for the choice of nodes (0: from the clock)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.BoolVar(&o.verbose, "v", false, "log kernel and gossip warnings to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*nodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 5000 {
			return nil, fmt.Errorf("-nodes: %q is not a cluster size between 2 and 5000", s)
		}
		o.nodes = append(o.nodes, n)
	}
	switch {
	case o.trials < 1:
		return nil, fmt.Errorf("-trials must be ≥ 1, got %d", o.trials)
	case o.meetWidth < 1:
		return nil, fmt.Errorf("-meet-parallel must be ≥ 1, got %d", o.meetWidth)
	case o.idle <= 0:
		return nil, fmt.Errorf("-idle must be > 0, got %v", o.idle)
	case o.formTimeout <= 0 || o.trialTimeout <= 0 || o.mlTimeout <= 0 || o.budget <= 0:
		return nil, errors.New("-form-timeout, -ml-timeout, -trial-timeout and -budget must be > 0")
	}
	switch o.lazy {
	case "auto", "true", "false":
	default:
		return nil, fmt.Errorf("-lazy must be auto, true or false, got %q", o.lazy)
	}
	if o.memberlist != "lan" && o.memberlist != "wan" {
		return nil, fmt.Errorf("-memberlist must be lan or wan, got %q", o.memberlist)
	}
	switch o.form {
	case "auto", "meet", "insert":
	default:
		return nil, fmt.Errorf("-form must be auto, meet or insert, got %q", o.form)
	}
	switch o.probe {
	case "dead", "live":
	default:
		return nil, fmt.Errorf("-probe must be dead or live, got %q", o.probe)
	}
	if o.cookie == "" {
		return nil, errors.New("-cookie must not be empty")
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	return &o, nil
}

// result is one cluster size's figures; it is also the JSON output.
type result struct {
	Nodes       int    `json:"nodes"`
	LazyConnect bool   `json:"lazy_connect"`
	Probe       string `json:"probe"`
	Memberlist  string `json:"memberlist"`
	GOMAXPROCS  int    `json:"gomaxprocs"`
	LoadAvg     string `json:"loadavg"` // /proc/loadavg at the end ("" elsewhere): other load skews everything

	SetupS        float64 `json:"setup_s"`         // start N kernels and rings
	FormationS    float64 `json:"formation_s"`     // meets until every ring has N nodes
	FormationMLS  float64 `json:"formation_ml_s"`  // until every memberlist sees N alive; -1: not within -ml-timeout
	MLNotAlive    int     `json:"ml_not_alive"`    // (ring, member) pairs not alive when -ml-timeout ended
	Form          string  `json:"form"`            // "meet" or "minsert"
	Meet          dist    `json:"meet_ms"`         // each node's Meet call (form meet)
	MeetRetries   int64   `json:"meet_retries"`    // failed Meet calls retried
	TeardownS     float64 `json:"teardown_s"`      // Stop every ring and Close every kernel
	Trials        int     `json:"trials"`          // completed trials
	Stopped       string  `json:"stopped"`         // why fewer than -trials ran ("" if all did)
	Insert        dist    `json:"insert_ms"`       // insert convergence
	Remove        dist    `json:"remove_ms"`       // remove convergence
	Idle          idle    `json:"idle"`            // idle traffic
	Resources     usage   `json:"resources"`       // after formation
	EventsDropped uint64  `json:"events_dropped"`  // summed gossip Stats
	InboxDrops    uint64  `json:"inbox_drops"`     // summed gossip Stats
	RingRepairs   uint64  `json:"ring_repairs"`    // summed gossip Stats: rebuilt out-of-step rings
	SendErrors    uint64  `json:"send_errors"`     // summed gossip Stats
	MessagesSent  uint64  `json:"messages_sent"`   // summed gossip Stats, whole run
	RingsAgreeEnd bool    `json:"rings_agree_end"` // all rings equal before teardown
	Kernel        kstats  `json:"kernel"`          // summed kernel Stats, whole run
}

// kstats are kernel counters that explain slow convergence.
type kstats struct {
	Reconnects        uint64 `json:"reconnects"`
	QueueDrops        uint64 `json:"queue_drops"`
	RejectedHandshake uint64 `json:"rejected_handshake"`
	CastsUnknownName  uint64 `json:"casts_unknown_name"`
}

// dist summarises durations in milliseconds.
type dist struct {
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// idle is the traffic of a cluster with no changes, per node per second.
type idle struct {
	Seconds        float64 `json:"seconds"`
	BytesPerNodeS  float64 `json:"bytes_per_node_s"`        // kernel + udp + stream
	KernelBytes    float64 `json:"kernel_bytes_per_node_s"` // kernel records written
	UDPBytes       float64 `json:"udp_bytes_per_node_s"`    // memberlist datagrams written
	StreamBytes    float64 `json:"stream_bytes_per_node_s"` // memberlist stream bytes written
	UDPPackets     float64 `json:"udp_packets_per_node_s"`
	KernelRecords  float64 `json:"kernel_records_per_node_s"`
	RingMessages   float64 `json:"ring_messages_per_node_s"` // gossip Stats.MessagesSent
	MemberlistPull float64 `json:"streams_per_node_s"`       // memberlist streams dialed
}

// usage is the process's footprint with the cluster formed.
type usage struct {
	Goroutines int     `json:"goroutines"`
	OpenFDs    int     `json:"open_fds"` // -1 where /proc/self/fd is missing
	FDLimit    uint64  `json:"fd_limit"`
	HeapMB     float64 `json:"heap_mb"`
	SysMB      float64 `json:"sys_mb"`
	KernelLink int     `json:"kernel_links"` // outbound kernel links, all nodes
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func printTable(w io.Writer, rs []*result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "nodes\tlinks\tform\ttrials\tsetup s\tform s\tform ml s\tinsert p50 ms\tp99 ms\tmax ms\tremove p50 ms\tp99 ms\tmax ms\tidle B/node/s\tkernel\tudp\tstream\t")
	for _, r := range rs {
		links := "mesh"
		if r.LazyConnect {
			links = "lazy"
		}
		mlForm := fmt.Sprintf("%.2f", r.FormationMLS)
		if r.FormationMLS < 0 {
			mlForm = "not settled"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%.2f\t%.2f\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%.0f\t%.0f\t%.0f\t\n",
			r.Nodes, links, r.Form, r.Trials, r.SetupS, r.FormationS, mlForm,
			r.Insert.P50, r.Insert.P99, r.Insert.Max, r.Remove.P50, r.Remove.P99, r.Remove.Max,
			r.Idle.BytesPerNodeS, r.Idle.KernelBytes, r.Idle.UDPBytes, r.Idle.StreamBytes)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nprobe %s; memberlist %s; GOMAXPROCS %d. p99 is nearest-rank (the maximum below 100 trials).\n",
		rs[0].Probe, rs[0].Memberlist, runtime.GOMAXPROCS(0))
	for _, r := range rs {
		if r.Stopped != "" {
			fmt.Fprintf(w, "%d nodes: trials stopped: %s\n", r.Nodes, r.Stopped)
		}
		fmt.Fprintf(w, "%d nodes: Meet p50 %.1f ms max %.1f ms (%d retries); after formation %d goroutines, %d fds (limit %d), heap %.0f MB, %d kernel links; idle %.1f ring msgs and %.1f udp pkts /node/s; teardown %.2f s; load %s; kernel %+v; gossip inbox drops %d, send errors %d, ring repairs %d\n",
			r.Nodes, r.Meet.P50, r.Meet.Max, r.MeetRetries, r.Resources.Goroutines, r.Resources.OpenFDs, r.Resources.FDLimit, r.Resources.HeapMB,
			r.Resources.KernelLink, r.Idle.RingMessages, r.Idle.UDPPackets, r.TeardownS, r.LoadAvg, r.Kernel, r.InboxDrops, r.SendErrors, r.RingRepairs)
	}
}
