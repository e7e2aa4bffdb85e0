package main

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/testutil"
)

// eventsReply is an events reply with one event per level.
var eventsReply = command.Reply{OK: true, Data: json.RawMessage(`{"next":4,"missed":2,"events":[` +
	`{"seq":1,"time":"2026-12-02T07:33:20.261Z","level":"debug","kind":"send","ring":"r","nodes":["a@h:1"]},` +
	`{"seq":2,"time":"2026-12-02T07:33:20.262Z","level":"info","kind":"inserted","ring":"r","nodes":["b@h:2"]},` +
	`{"seq":3,"time":"2026-12-02T07:33:21.5Z","level":"warn","kind":"dead","ring":"r","nodes":["c@h:3"],"more":2}]}`)}

// runMonitor runs a one-shot monitor until want shows in its output, then
// sends the signal (cancels ctx) and returns the exit code and output.
func runMonitor(t *testing.T, args []string, want string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testutil.SyncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, nil, &out, io.Discard) }()
	testutil.WaitFor(t, "monitor output "+strconv.Quote(want), func() bool { return strings.Contains(out.String(), want) })
	cancel()
	select {
	case c := <-code:
		return c, out.String()
	case <-time.After(10 * time.Second):
		t.Fatal("monitor did not stop on the signal")
		return 0, ""
	}
}

// One-shot monitor prints a JSON object per event at or above --level
// (default info), says what it missed, and exits 0 on a signal.
func TestOneShotMonitor(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Events, eventsReply)
	flags := []string{"-I", "node1", "-H", k.Self().Host, "-p", strconv.Itoa(k.Self().Port), "-a", testCookie, "--timeout", "5s"}

	code, out := runMonitor(t, append(flags, "monitor"), `"kind":"dead"`)
	if code != 0 || !strings.Contains(out, `{"missed":2}`+"\n") || !strings.Contains(out, `{"seq":2,"time":"2026-12-02T07:33:20.262Z","level":"info","kind":"inserted","ring":"r","nodes":["b@h:2"]}`+"\n") ||
		strings.Contains(out, `"send"`) {
		t.Fatalf("monitor: exit %d\n%s", code, out)
	}
	code, out = runMonitor(t, append(flags, "--format", "text", "monitor", "--level", "warn"), "dead")
	if code != 0 || !strings.Contains(out, "2026-12-02T07:33:21.500Z  warn   dead          ring=r  c@h:3 (+2 more)\n") || strings.Contains(out, "inserted") {
		t.Fatalf("monitor --level warn: exit %d\n%s", code, out)
	}
	code, out = runMonitor(t, append(flags, "monitor", "--level=debug", "--format=text"), "send")
	if code != 0 || !strings.Contains(out, "(2 events missed") {
		t.Fatalf("monitor --level debug: exit %d\n%s", code, out)
	}
	// The first poll asks from now on (since 0), the next from the cursor.
	var sinces []uint64
	for _, c := range f.got() {
		sinces = append(sinces, c.args.Since)
	}
	if len(sinces) < 3 || sinces[0] != 0 {
		t.Fatalf("polls asked since %v", sinces)
	}

	// A failed poll ends monitor with exit 1 and the reply.
	f.set(command.Events, command.Fail(command.CodeFailed, "boom"))
	c, o, _ := cli(k, testCookie, 5*time.Second, "monitor")
	if r := decodeOutput(t, o); c != 1 || r.OK || r.Error.Message != "boom" {
		t.Fatalf("failed monitor: exit %d\n%s", c, o)
	}
	// Bad options are usage errors.
	for _, args := range [][]string{{"monitor", "--level", "loud"}, {"monitor", "extra"}, {"monitor", "--format", "xml"}, {"monitor", "--level"}} {
		if c, o, e := cli(k, testCookie, 5*time.Second, args...); c != exitUsage || o != "" || !strings.Contains(e, "Usage: notp-cli [flags] monitor") {
			t.Errorf("%v: exit %d stdout %q stderr %q", args, c, o, e)
		}
	}
}

// In the shell, monitor prints text until Enter, then the shell goes on.
func TestShellMonitor(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	f.set(command.Events, eventsReply)
	in, feed := io.Pipe()
	defer feed.Close()
	var out testutil.SyncBuffer
	self := k.Self()
	code := make(chan int, 1)
	go func() {
		code <- run(context.Background(), []string{"-I", self.ID, "-H", self.Host, "-p", strconv.Itoa(self.Port), "-a", testCookie}, in, &out, io.Discard)
	}()
	io.WriteString(feed, "monitor --level warn\n")
	testutil.WaitFor(t, "monitor's event", func() bool { return strings.Contains(out.String(), "warn   dead") })
	io.WriteString(feed, "\n")
	io.WriteString(feed, "monitor --level nope\nping\nexit\n")
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("shell did not end:\n%s", out.String())
	}
	s := out.String()
	for _, w := range []string{"> Monitoring node1; press Enter to stop.\n", "warn   dead          ring=r  c@h:3 (+2 more)\n",
		"monitor: --level \"nope\": want debug, info, warn or error\nUsage: monitor [--level debug|info|warn|error] [--format text|json]\n", "\"data\": \"pong\""} {
		if !strings.Contains(s, w) {
			t.Fatalf("shell output lacks %q:\n%s", w, s)
		}
	}
	if strings.Contains(s, "inserted") {
		t.Fatalf("--level warn printed an info event:\n%s", s)
	}
}

// monitor prints the node's log lines at their level, on one line each
// whatever control characters they hold; --level error keeps only errors.
func TestMonitorLogLines(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Events, command.Reply{OK: true, Data: json.RawMessage(`{"next":3,"missed":0,"events":[` +
		`{"seq":1,"time":"2026-12-02T07:33:20.261Z","level":"info","kind":"log","nodes":[],"message":"key installed key_id=\"0123456789abcdef\"\u001b[2J"},` +
		`{"seq":2,"time":"2026-12-02T07:33:20.262Z","level":"error","kind":"log","nodes":[],"message":"node failed err=\"boom\""}]}`)})
	flags := []string{"-I", "node1", "-H", k.Self().Host, "-p", strconv.Itoa(k.Self().Port), "-a", testCookie, "--timeout", "5s"}
	code, out := runMonitor(t, append(flags, "--format", "text", "monitor"), "node failed")
	if code != 0 || !strings.Contains(out, "2026-12-02T07:33:20.261Z  info   log           key installed key_id=\"0123456789abcdef\" [2J\n") ||
		!strings.Contains(out, "error  log           node failed err=\"boom\"\n") {
		t.Fatalf("monitor: exit %d\n%q", code, out)
	}
	code, out = runMonitor(t, append(flags, "--format", "text", "monitor", "--level", "error"), "node failed")
	if code != 0 || strings.Contains(out, "key installed") {
		t.Fatalf("monitor --level error: exit %d\n%s", code, out)
	}
}
