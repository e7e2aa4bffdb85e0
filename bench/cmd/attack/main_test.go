package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goTool finds the go command that runs this test.
func goTool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no go command in PATH or GOROOT: %v", err)
	}
	return p
}

// buildNode builds examples/node into a temporary directory.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "node")
	cmd := exec.Command(goTool(t), "build", "-o", bin, "github.com/notp-go/notp/examples/node")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/node: %v\n%s", err, out)
	}
	return bin
}

// runningFrom lists the processes whose executable is bin.
func runningFrom(bin string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestSmallRun runs every attack with tiny sizes against a node built from
// this repository, and checks that each row measured a live node that
// answered the legitimate client, that no attack failed to run (a broken
// hand-written handshake shows up as an error in the notes), and that no
// node process is left behind.
func TestSmallRun(t *testing.T) {
	bin := buildNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"-node", bin, "-small"}, &stdout, &stderr); code != 0 {
		t.Fatalf("run exited %d; stderr:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if i := strings.Index(out, "| attack"); i >= 0 {
		out = out[i:]
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2+len(attacks) {
		t.Fatalf("got %d lines, want a header of 2 and %d rows:\n%s", len(lines), len(attacks), stdout.String())
	}
	wantNotes := map[string]string{
		"proof-leak":      "no proof leak: after its hello the node sent nothing",
		"ml-junk":         "conns",
		"idle-conns":      "connected",
		"partial-streams": "without their last chunk",
		"unread-replies":  "echo calls",
		"nil-entries":     "node answered INVALID_RING_MESSAGE",
		"big-rings":       "attack entries; restarted node answers",
	}
	for i, line := range lines[2:] {
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 9 {
			t.Errorf("row %q: %d cells, want 9", line, len(cells))
			continue
		}
		name, legit, notes := cells[0], cells[6], cells[8]
		if name != attacks[i].name {
			t.Errorf("row %d is %q, want %q", i, name, attacks[i].name)
		}
		if ok, _, _ := strings.Cut(legit, "/"); ok == "0" || ok == "-" {
			t.Errorf("%s: no legitimate call succeeded (%s): %s", name, legit, notes)
		}
		if strings.Contains(notes, "error:") || strings.Contains(notes, "NODE DIED") {
			t.Errorf("%s: %s", name, notes)
		}
		if !strings.Contains(notes, wantNotes[name]) {
			t.Errorf("%s: notes %q lack %q", name, notes, wantNotes[name])
		}
		if name == "proof-leak" && !strings.Contains(notes, "offline guesses/s") {
			t.Errorf("%s: notes %q lack the guess rate against a dialer's proof", name, notes)
		}
	}
	if pids := runningFrom(bin); len(pids) > 0 {
		t.Errorf("node processes left running: %v", pids)
	}
}

// TestFlags checks that bad invocations exit 2 before starting anything.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-node", "/nonexistent/node"},
		{"-node", os.Args[0], "-only", "no-such-attack"},
		{"-node", os.Args[0], "-runs", "0"},
		{"-node", os.Args[0], "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2; stderr: %s", args, code, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("run(%q) printed %q", args, stdout.String())
		}
	}
}

// TestCheckLoopback checks that nothing but 127.0.0.1 is ever a target.
func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:7022": true, "10.0.0.1:7022": false, "localhost:7022": false,
		"[::1]:7022": false, "example.com:80": false, "127.0.0.1": false,
	} {
		if got := checkLoopback(addr) == nil; got != ok {
			t.Errorf("checkLoopback(%q) allowed = %v, want %v", addr, got, ok)
		}
	}
}
