package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/kernel"
)

// Two modes measure the kernel's busy polling (kernel.Config.BusyPoll):
//
//   - -mode latency: per round, the floor (the fastest p50 of -floor-runs
//     one-goroutine raw TCP ping-pongs, each between this process and a
//     fresh server process) and then, for each system, the sequential call
//     p50/p99 and calls/s with -c concurrent callers, side by side.
//   - -mode cpu: per round and system, the CPU seconds both processes
//     spend over -cpu-duration while the server holds -conns idle
//     connections (one client kernel each), and while it receives calls at
//     random (exponential) intervals, -rate per second on average.

// pingpongServer is the server process of the floor: it echoes what each
// connection sends, one goroutine per connection, no framing.
const pingpongServer = "tcp-pingpong"

// helperServers are server processes that are not benchmark systems.
var helperServers = map[string]func(ctx context.Context, sec *secrets) (string, func() error, error){
	pingpongServer: pingpongServe,
}

func pingpongServe(_ context.Context, _ *secrets) (string, func() error, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), ln.Close, nil
}

// pingpongP50 starts a fresh ping-pong server process and returns the p50
// of n round trips of payload (after warmup), bounded by d.
func pingpongP50(ctx context.Context, o options, sec *secrets, payload []byte, stderr io.Writer) (time.Duration, error) {
	srv, err := startServer(ctx, pingpongServer, "", o.gomaxprocs, sec, stderr)
	if err != nil {
		return 0, err
	}
	defer srv.stop()
	c, err := net.DialTimeout("tcp", srv.addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(o.duration + callTimeout))
	got := make([]byte, len(payload))
	trip := func() error {
		if _, err := c.Write(payload); err != nil {
			return err
		}
		_, err := io.ReadFull(c, got)
		return err
	}
	for range o.warmup {
		if err := trip(); err != nil {
			return 0, err
		}
	}
	lat := make([]time.Duration, 0, o.n)
	deadline := time.Now().Add(o.duration)
	for i := 0; i < o.n && time.Now().Before(deadline); i++ {
		t0 := time.Now()
		if err := trip(); err != nil {
			return 0, err
		}
		lat = append(lat, time.Since(t0))
	}
	if !bytes.Equal(got, payload) {
		return 0, errors.New("ping-pong echo differs from the payload")
	}
	slices.Sort(lat)
	return percentile(lat, 0.5), nil
}

// latencyMode runs -rounds rounds of the floor and each system's
// sequential and concurrent phases.
func latencyMode(ctx context.Context, o options, sec *secrets, stdout, stderr io.Writer) error {
	payload := makePayload(o.payload)
	fmt.Fprintf(stdout, "%s\n", loadLine())
	fmt.Fprintf(stdout, "%-5s %-13s %9s %9s %9s %14s\n", "round", "system", "p50 µs", "p99 µs", "x floor", "conc calls/s")
	for round := 1; round <= o.rounds; round++ {
		floor := time.Duration(-1)
		for range o.floorRuns {
			p, err := pingpongP50(ctx, o, sec, payload, stderr)
			if err != nil {
				return fmt.Errorf("floor: %w", err)
			}
			if floor < 0 || p < floor {
				floor = p
			}
		}
		fmt.Fprintf(stdout, "%-5d %-13s %9.1f %9s %9s %14s\n", round, "floor", micros(floor), "", "1.00", "")
		for _, name := range o.systems {
			res, err := latencySystem(ctx, name, o, sec, payload, stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(stdout, "%-5d %-13s %9.1f %9.1f %9.2f %14.0f\n", round, name, res.Seq.P50us, res.Seq.P99us,
				res.Seq.P50us/micros(floor), res.Concurrent.CallsPerSec)
		}
	}
	fmt.Fprintf(stdout, "%s\n", loadLine())
	return nil
}

func latencySystem(ctx context.Context, name string, o options, sec *secrets, payload []byte, stderr io.Writer) (Result, error) {
	var res Result
	srv, err := startServer(ctx, name, "", o.gomaxprocs, sec, stderr)
	if err != nil {
		return res, err
	}
	defer srv.stop()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cl, err := registry[name].dial(dctx, srv.addr, sec)
	cancel()
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	defer cl.Close()
	wctx, cancel := context.WithTimeout(ctx, o.duration+callTimeout)
	defer cancel()
	for range o.warmup {
		if err := call(wctx, cl, payload); err != nil {
			return res, fmt.Errorf("warm-up call: %w", err)
		}
	}
	if res.Seq, err = seqPhase(ctx, cl, payload, o.n, o.duration); err != nil {
		return res, fmt.Errorf("sequential calls: %w", err)
	}
	if res.Concurrent, err = concPhase(ctx, cl, payload, o.callers, o.n, o.duration); err != nil {
		return res, fmt.Errorf("concurrent calls: %w", err)
	}
	return res, srv.stop()
}

// cpuMode measures the CPU cost of idle connections and of sparse calls
// for each notp system.
func cpuMode(ctx context.Context, o options, sec *secrets, stdout, stderr io.Writer) error {
	for _, name := range o.systems {
		if _, ok := notpSystems[name]; !ok {
			return fmt.Errorf("-mode cpu measures notp systems only, not %q", name)
		}
	}
	fmt.Fprintf(stdout, "%s\n", loadLine())
	fmt.Fprintf(stdout, "%-5s %-8s %-13s %12s %12s %8s %22s\n", "round", "load", "system", "server cpu s", "client cpu s", "calls", "client polls hit/miss")
	for round := 1; round <= o.rounds; round++ {
		for _, scenario := range []string{"idle", "sparse"} {
			for _, name := range o.systems {
				r, err := cpuRun(ctx, name, scenario, o, sec, stderr)
				if err != nil {
					return fmt.Errorf("%s %s: %w", scenario, name, err)
				}
				fmt.Fprintf(stdout, "%-5d %-8s %-13s %12.3f %12.3f %8d %22s\n", round, scenario, name,
					r.server.Seconds(), r.client.Seconds(), r.calls, fmt.Sprintf("%d/%d", r.hits, r.misses))
			}
		}
	}
	fmt.Fprintf(stdout, "%s\n", loadLine())
	return nil
}

type cpuResult struct {
	server, client time.Duration
	calls          int
	hits, misses   uint64
}

func cpuRun(ctx context.Context, name, scenario string, o options, sec *secrets, stderr io.Writer) (cpuResult, error) {
	var r cpuResult
	srv, err := startServer(ctx, name, "", o.gomaxprocs, sec, stderr)
	if err != nil {
		return r, err
	}
	defer srv.stop()
	srvNode, err := notp.ParseNode(srv.addr)
	if err != nil {
		return r, err
	}
	conns := 1
	if scenario == "idle" {
		conns = o.conns
	}
	var ks []*kernel.Kernel
	defer func() {
		for _, k := range ks {
			k.Close()
		}
	}()
	for i := range conns {
		k, err := notpKernel(fmt.Sprintf("bench-client-%d", i), sec, notpSystems[name])
		if err != nil {
			return r, err
		}
		ks = append(ks, k)
		if err := k.Start(ctx); err != nil {
			return r, err
		}
		if err := k.Connect(srvNode); err != nil {
			return r, err
		}
		if err := pingUntil(ctx, k, srvNode); err != nil {
			return r, err
		}
	}
	settle := time.NewTimer(time.Second) // the handshakes' work is done
	select {
	case <-settle.C:
	case <-ctx.Done():
		return r, ctx.Err()
	}
	pid := srv.cmd.Process.Pid
	s0, err := processCPU(strconv.Itoa(pid))
	if err != nil {
		return r, err
	}
	c0, err := processCPU("self")
	if err != nil {
		return r, err
	}
	before := ks[0].Stats()
	end := time.Now().Add(o.cpuDuration)
	if scenario == "sparse" {
		payload := makePayload(o.payload)
		cctx, cancel := context.WithDeadline(ctx, end.Add(callTimeout))
		defer cancel()
		mean := float64(time.Second) / float64(o.rate)
		next := time.Now()
		for {
			// Poisson arrivals on absolute times, so the calls' own
			// time does not lower the rate.
			next = next.Add(time.Duration(rand.ExpFloat64() * mean))
			if next.After(end) {
				break
			}
			time.Sleep(time.Until(next)) // the arrival process, not a synchronisation
			if _, err := ks[0].Call(cctx, srvNode, notpEcho, payload); err != nil {
				return r, fmt.Errorf("call: %w", err)
			}
			r.calls++
		}
	}
	if d := time.Until(end); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	s1, err := processCPU(strconv.Itoa(pid))
	if err != nil {
		return r, err
	}
	c1, err := processCPU("self")
	if err != nil {
		return r, err
	}
	after := ks[0].Stats()
	r.server, r.client = s1-s0, c1-c0
	r.hits, r.misses = after.PollHits-before.PollHits, after.PollMisses-before.PollMisses
	return r, srv.stop()
}

func pingUntil(ctx context.Context, k *kernel.Kernel, n notp.Node) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := k.Ping(pctx, n)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("ping %s: %w", n, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// processCPU is the CPU time a process has used (pid, or "self"): the sum
// of its threads' on-CPU nanoseconds from /proc/PID/task/*/schedstat
// (nanosecond resolution; Go's threads live as long as the process).
func processCPU(pid string) (time.Duration, error) {
	paths, err := filepath.Glob(filepath.Join("/proc", pid, "task", "*", "schedstat"))
	if err != nil || len(paths) == 0 {
		return 0, fmt.Errorf("no /proc/%s/task/*/schedstat (Linux only): %v", pid, err)
	}
	var total time.Duration
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // a thread that just exited
			}
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", p)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}

// loadLine reports the machine's load averages (Linux), since other work
// on a shared machine moves every figure.
func loadLine() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return fmt.Sprintf("load: unknown, %d cpus", runtime.NumCPU())
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "load: unknown"
	}
	return fmt.Sprintf("load averages (1/5/15 min): %s %s %s, %d cpus", f[0], f[1], f[2], runtime.NumCPU())
}

func makePayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte('a' + i%26)
	}
	return p
}
