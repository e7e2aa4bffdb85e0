package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
)

// TestRunJSON runs the program on 3 nodes with 3 trials (2 s idle: at least
// one poll and one probe per node) and checks every
// field of the JSON it prints, then that the cluster was shut down cleanly
// (no goroutine left running once the test ends).
func TestRunJSON(t *testing.T) {
	clustertest.CheckLeaks(t)
	var stdout, stderr bytes.Buffer
	args := []string{"-nodes", "3", "-trials", "3", "-idle", "2s", "-json", "-trial-timeout", "10s", "-form-timeout", "10s"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s\nstdout:\n%s", code, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d JSON lines, want 1:\n%s", len(lines), stdout.String())
	}
	var top map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &top); err != nil {
		t.Fatalf("line %q: %v", lines[0], err)
	}
	wantKeys := []string{"events_dropped", "form", "formation_ml_s", "formation_s", "gomaxprocs", "idle", "inbox_drops",
		"insert_ms", "kernel", "lazy_connect", "loadavg", "meet_ms", "meet_retries", "memberlist", "messages_sent", "ml_not_alive", "nodes", "probe",
		"remove_ms", "resources", "ring_repairs", "rings_agree_end", "send_errors", "setup_s", "stopped", "teardown_s", "trials"}
	if got := keys(top); !slices.Equal(got, wantKeys) {
		t.Errorf("keys %v, want %v", got, wantKeys)
	}

	var r result
	if err := json.Unmarshal([]byte(lines[0]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Nodes != 3 || r.Trials != 3 || r.Stopped != "" || r.Probe != "dead" || r.Memberlist != "DefaultLANConfig" || r.LazyConnect {
		t.Errorf("header fields: %+v", r)
	}
	if r.SetupS <= 0 || r.FormationS <= 0 || r.FormationMLS < r.FormationS || r.TeardownS <= 0 {
		t.Errorf("setup %v, formation %v / %v, teardown %v", r.SetupS, r.FormationS, r.FormationMLS, r.TeardownS)
	}
	for name, d := range map[string]dist{"insert": r.Insert, "remove": r.Remove, "meet": r.Meet} {
		if !(d.P50 > 0 && d.P50 <= d.P99 && d.P99 <= d.Max && d.Mean > 0 && d.Mean <= d.Max) {
			t.Errorf("%s distribution %+v", name, d)
		}
	}
	if r.Idle.Seconds < 2 || r.Idle.BytesPerNodeS <= 0 || r.Idle.KernelBytes <= 0 || r.Idle.UDPBytes <= 0 ||
		r.Idle.UDPPackets <= 0 || r.Idle.RingMessages <= 0 ||
		r.Idle.BytesPerNodeS != r.Idle.KernelBytes+r.Idle.UDPBytes+r.Idle.StreamBytes {
		t.Errorf("idle %+v", r.Idle)
	}
	// A full mesh of 3 nodes: 6 outbound kernel links.
	if r.Resources.KernelLink != 6 || r.Resources.Goroutines <= 0 || r.Resources.HeapMB <= 0 {
		t.Errorf("resources %+v", r.Resources)
	}
	if !r.RingsAgreeEnd || r.MessagesSent == 0 || r.EventsDropped != 0 {
		t.Errorf("agree %v, sent %d, events dropped %d", r.RingsAgreeEnd, r.MessagesSent, r.EventsDropped)
	}
	if !strings.Contains(stderr.String(), "3 nodes: teardown") {
		t.Errorf("no progress lines on stderr:\n%s", stderr.String())
	}

}

// TestRunTable checks the table output of a 2-node run and the probe
// variant with a running kernel.
func TestRunTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-nodes", "2", "-trials", "2", "-idle", "100ms", "-probe", "live", "-lazy", "true"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"insert p50 ms", "idle B/node/s", "probe live; memberlist DefaultLANConfig"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	rows := 0
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 17 && f[0] == "2" && f[1] == "lazy" && f[2] == "meet" && f[3] == "2" {
			rows++
		}
	}
	if rows != 1 {
		t.Errorf("want one table row \"2 lazy meet\" with 17 columns:\n%s", out)
	}
}

// TestBadFlags checks that invalid arguments fail with status 2 before
// any node starts.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-nodes", "1"},
		{"-nodes", "10,x"},
		{"-nodes", ""},
		{"-trials", "0"},
		{"-idle", "0s"},
		{"-lazy", "maybe"},
		{"-probe", "zombie"},
		{"-meet-parallel", "0"},
		{"-budget", "0s"},
		{"-form", "magic"},
		{"-cookie", ""},
		{"-no-such-flag"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if stdout.Len() != 0 || stderr.Len() == 0 {
			t.Errorf("%q: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarise(ds)
	want := dist{P50: 50, P99: 99, Max: 100, Mean: 50.5}
	if got != want {
		t.Fatalf("summarise(1..100 ms) = %+v, want %+v", got, want)
	}
	// Below 100 samples the nearest-rank p99 is the maximum.
	if got := summarise(ds[80:]); got.P99 != 20 || got.Max != 20 || got.P50 != 10 {
		t.Fatalf("summarise(1..20 ms) = %+v", got)
	}
	if got := summarise(nil); got != (dist{}) {
		t.Fatalf("summarise(nil) = %+v", got)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestBudget checks that trials stop once the per-size budget is spent
// and that the result says so.
func TestBudget(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"-nodes", "2", "-trials", "5", "-budget", "1ns", "-idle", "100ms", "-json"}
	if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	var r result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%q: %v", stdout.String(), err)
	}
	if r.Trials != 0 || !strings.Contains(r.Stopped, "budget ran out after 0 trials") || r.Insert != (dist{}) {
		t.Fatalf("trials %d, stopped %q, insert %+v", r.Trials, r.Stopped, r.Insert)
	}
}
