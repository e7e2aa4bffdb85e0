// Command kernelbench measures the notp kernel against protoactor-go remote
// across two OS processes on loopback.
//
// The parent process re-executes its own binary with -serve <system> to start
// the server, waits for the "ready <addr>" line on the child's stdout, then
// drives it as the client through three phases:
//
//   - sequential calls: p50 and p99 latency and calls/s over -n calls;
//   - concurrent calls: calls/s with -c callers sharing -n calls;
//   - one-way casts: -casts casts, counted by the server (the receiver).
//
// Systems: notp (the kernel with cookie authentication and its default,
// adaptive, busy polling), notp-tls (mutual TLS 1.3 plus the cookie),
// notp-poll and notp-tls-poll (the same with a fixed
// kernel.Config.BusyPoll = 50µs in both processes), notp-off (polling
// off: kernel.BusyPollOff), protoactor
// (protoactor-go remote over gRPC) and tcp (a raw TCP baseline). -cpuprofile and -server-cpuprofile write pprof
// CPU profiles of the two processes.
//
// Every phase stops after its count or after -duration, whichever comes
// first. The child exits when its stdin closes (so it never outlives the
// parent) and is killed if it does not exit promptly.
//
// -mode latency and -mode cpu measure busy polling instead (see
// polling.go): the sequential p50 of systems beside a raw TCP ping-pong
// floor, and the CPU cost of idle connections and sparse calls.
//
// Usage:
//
//	go run ./cmd/kernelbench -systems notp,notp-tls,protoactor -json
//	go run ./cmd/kernelbench -mode latency -systems notp,notp-poll,notp-off
//	go run ./cmd/kernelbench -mode cpu -systems notp,notp-off
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed command-line flags of the client (parent) side.
type options struct {
	systems          []string
	n                int           // calls per call phase
	casts            int           // casts in the cast phase
	callers          int           // concurrent callers
	warmup           int           // warm-up calls (and casts) before measuring
	payload          int           // payload size in bytes
	duration         time.Duration // time bound of each phase
	jsonOut          bool
	cpuProfile       string // client profile path; the system name is appended
	serverCPUProfile string // server profile path; the system name is appended
	gomaxprocs       int    // GOMAXPROCS of both processes; 0 leaves the default

	mode        string        // "" (the phases), "latency" or "cpu"
	rounds      int           // -mode latency and cpu: rounds
	floorRuns   int           // -mode latency: ping-pongs per round whose fastest p50 is the floor
	conns       int           // -mode cpu: idle connections
	rate        int           // -mode cpu: mean calls per second of the sparse load
	cpuDuration time.Duration // -mode cpu: measuring time of each scenario
}

// run is main without os.Exit, so tests can drive it. It returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kernelbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o       options
		systems string
		serve   string
	)
	fs.StringVar(&systems, "systems", strings.Join(systemNames(), ","), "comma-separated systems to run")
	fs.IntVar(&o.n, "n", 50000, "calls per call phase (sequential and concurrent)")
	fs.IntVar(&o.casts, "casts", 2000000, "casts in the cast phase")
	fs.IntVar(&o.callers, "c", 64, "concurrent callers")
	fs.IntVar(&o.warmup, "warmup", 2000, "warm-up calls and casts before measuring")
	fs.IntVar(&o.payload, "payload", 32, "payload size in bytes")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "time bound of each phase")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per system instead of a table")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write the client's CPU profile to this path (with -<system> before the extension)")
	fs.StringVar(&o.serverCPUProfile, "server-cpuprofile", "", "write the server's CPU profile to this path (with -<system> before the extension)")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of both the client and the server process (0: Go's default)")
	fs.StringVar(&o.mode, "mode", "", "latency: floor and sequential p50 per system, side by side, -rounds times; cpu: CPU seconds with idle connections and sparse calls")
	fs.IntVar(&o.rounds, "rounds", 3, "-mode latency and cpu: rounds")
	fs.IntVar(&o.floorRuns, "floor-runs", 3, "-mode latency: raw TCP ping-pongs (fresh processes) per round; the fastest p50 is the floor")
	fs.IntVar(&o.conns, "conns", 50, "-mode cpu: idle connections the server holds")
	fs.IntVar(&o.rate, "rate", 200, "-mode cpu: mean calls per second of the sparse load (random intervals)")
	fs.DurationVar(&o.cpuDuration, "cpu-duration", 20*time.Second, "-mode cpu: how long each scenario is measured")
	fs.StringVar(&serve, "serve", "", "internal: run as the server process of this system")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "kernelbench: unexpected arguments %q\n", fs.Args())
		return 2
	}

	if o.gomaxprocs < 0 {
		fmt.Fprintln(stderr, "kernelbench: -gomaxprocs must not be negative")
		return 2
	}
	if o.gomaxprocs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(o.gomaxprocs))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if serve != "" {
		if err := serveMain(ctx, serve, o.cpuProfile, os.Stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "kernelbench server: %v\n", err)
			return 1
		}
		return 0
	}

	for _, s := range strings.Split(systems, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, ok := registry[s]; !ok {
			fmt.Fprintf(stderr, "kernelbench: unknown system %q (have %s)\n", s, strings.Join(systemNames(), ", "))
			return 2
		}
		o.systems = append(o.systems, s)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "kernelbench: %v\n", err)
		return 2
	}

	sec, err := newSecrets()
	if err != nil {
		fmt.Fprintf(stderr, "kernelbench: %v\n", err)
		return 1
	}
	switch o.mode {
	case "latency", "cpu":
		run := latencyMode
		if o.mode == "cpu" {
			run = cpuMode
		}
		if err := run(ctx, o, sec, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "kernelbench: %v\n", err)
			return 1
		}
		return 0
	}
	status := 0
	var results []Result
	for _, name := range o.systems {
		if ctx.Err() != nil {
			break
		}
		res, err := benchSystem(ctx, name, o, sec, stderr)
		if err != nil {
			res.Error = err.Error()
			status = 1
			fmt.Fprintf(stderr, "kernelbench: %s: %v\n", name, err)
		}
		results = append(results, res)
		if o.jsonOut {
			b, _ := json.Marshal(res)
			fmt.Fprintf(stdout, "%s\n", b)
		}
	}
	if !o.jsonOut {
		printTable(stdout, results)
	}
	if ctx.Err() != nil {
		return 1
	}
	return status
}

func (o *options) validate() error {
	switch {
	case len(o.systems) == 0:
		return errors.New("no systems given")
	case o.n <= 0:
		return errors.New("-n must be positive")
	case o.casts <= 0:
		return errors.New("-casts must be positive")
	case o.callers <= 0:
		return errors.New("-c must be positive")
	case o.warmup < 0:
		return errors.New("-warmup must not be negative")
	case o.payload < 0 || o.payload > 1<<20:
		return errors.New("-payload must be between 0 and 1 MiB")
	case o.duration <= 0:
		return errors.New("-duration must be positive")
	case o.mode != "" && o.mode != "latency" && o.mode != "cpu":
		return fmt.Errorf("-mode %q: want latency or cpu", o.mode)
	case o.rounds <= 0 || o.rounds > 100:
		return errors.New("-rounds must be between 1 and 100")
	case o.floorRuns <= 0 || o.floorRuns > 100:
		return errors.New("-floor-runs must be between 1 and 100")
	case o.conns <= 0 || o.conns > 10000:
		return errors.New("-conns must be between 1 and 10000")
	case o.rate <= 0 || o.rate > 100000:
		return errors.New("-rate must be between 1 and 100000")
	case o.cpuDuration <= 0:
		return errors.New("-cpu-duration must be positive")
	}
	return nil
}

// profilePath inserts "-<system>" before the extension of path.
func profilePath(path, system string) string {
	if path == "" {
		return ""
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + system + ext
}

// benchSystem starts the server process of one system, connects a client to
// it and runs the three phases.
func benchSystem(ctx context.Context, name string, o options, sec *secrets, stderr io.Writer) (Result, error) {
	sys := registry[name]
	res := Result{System: name, Config: sys.config, PayloadBytes: o.payload, GOMAXPROCS: runtime.GOMAXPROCS(0)}

	srv, err := startServer(ctx, name, profilePath(o.serverCPUProfile, name), o.gomaxprocs, sec, stderr)
	if err != nil {
		return res, err
	}
	defer srv.stop()

	if p := profilePath(o.cpuProfile, name); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		defer pprof.StopCPUProfile()
	}

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cl, err := sys.dial(dctx, srv.addr, sec)
	cancel()
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	defer cl.Close()

	payload := make([]byte, o.payload)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	err = runPhases(ctx, cl, payload, o, &res)
	if serr := srv.stop(); err == nil && serr != nil {
		err = serr
	}
	return res, err
}

func systemNames() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func printTable(w io.Writer, results []Result) {
	fmt.Fprintf(w, "%-13s %-44s %9s %9s %12s %14s %12s  %s\n",
		"system", "config", "p50 µs", "p99 µs", "seq calls/s", "conc calls/s", "casts/s", "error")
	for _, r := range results {
		fmt.Fprintf(w, "%-13s %-44s %9.1f %9.1f %12.0f %14.0f %12.0f  %s\n",
			r.System, r.Config, r.Seq.P50us, r.Seq.P99us, r.Seq.CallsPerSec,
			r.Concurrent.CallsPerSec, r.Casts.CastsPerSec, r.Error)
	}
}
