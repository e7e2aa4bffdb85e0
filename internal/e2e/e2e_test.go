//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/notp-go/notp/chash"
	"github.com/notp-go/notp/internal/testcert"
)

const ringID = "ring"

// reply is notp-cli's one-shot output.
type reply struct {
	OK    bool            `json:"ok"`
	Data  json.RawMessage `json:"data"`
	Error *struct {
		Message string            `json:"message"`
		Code    string            `json:"code"`
		Fields  map[string]string `json:"fields"`
	} `json:"error"`
}

// proc is one node process.
type proc struct {
	id    string
	port  int
	flush string
	log   string
	extra []string // more flags
	cli   []string // more notp-cli flags (TLS) for talking to it
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process exited
}

type env struct {
	t       *testing.T
	nodeBin string
	cliBin  string
	dir     string
	procs   map[string]*proc
	cookie  string // from notp-cli keygen
	keyFile string // holds cookie; the nodes read it with -cookie-file
}

// keygen makes the cluster's cookie with notp-cli keygen and writes it
// where the nodes read it; notp-cli gets it through NOTP_COOKIE, so it
// shows in no process list.
func (e *env) keygen() {
	out, err := exec.Command(e.cliBin, "keygen").Output()
	if err != nil {
		e.t.Fatalf("notp-cli keygen: %v", err)
	}
	e.cookie = strings.TrimSuffix(string(out), "\n")
	if len(e.cookie) != 64 {
		e.t.Fatalf("notp-cli keygen printed %q, want 64 hex digits", out)
	}
	e.keyFile = filepath.Join(e.dir, "cookie")
	if err := os.WriteFile(e.keyFile, out, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// binaries returns the node and CLI binaries: from NOTP_E2E_NODE and
// NOTP_E2E_CLI (set by .ci/e2e) or built into dir.
func binaries(t *testing.T, dir string) (string, string) {
	node, cli := os.Getenv("NOTP_E2E_NODE"), os.Getenv("NOTP_E2E_CLI")
	if node != "" && cli != "" {
		return node, cli
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := func(out, pkg string) string {
		p := filepath.Join(dir, out)
		c := exec.Command(gobin, "build", "-o", p, pkg)
		c.Dir = "../.."
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
		return p
	}
	return build("node", "./examples/node"), build("notp-cli", "./cmd/notp-cli")
}

// freePort returns a port that was free for TCP and UDP on loopback a
// moment ago (a node needs both on the same number).
func freePort(t *testing.T) int {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// start starts node id on port (0 = a free port, retried on a clash) and
// waits until it answers ping.
func (e *env) start(id string, port int, extra ...string) *proc {
	e.t.Helper()
	return e.startWith(id, port, nil, extra...)
}

// startWith is start for a node that notp-cli reaches with cliFlags.
func (e *env) startWith(id string, port int, cliFlags []string, extra ...string) *proc {
	e.t.Helper()
	fixed := port != 0
	for attempt := 1; ; attempt++ {
		if !fixed {
			port = freePort(e.t)
		}
		p := &proc{id: id, port: port, flush: filepath.Join(e.dir, id+".ring"), log: filepath.Join(e.dir, id+".log"),
			extra: extra, cli: cliFlags}
		if old := e.procs[id]; old != nil {
			p.flush = old.flush
		}
		e.procs[id] = p
		if err := e.spawn(p); err != nil {
			e.t.Fatal(err)
		}
		ready, exited := e.waitReady(p)
		if ready {
			return p
		}
		if !exited {
			_ = p.cmd.Process.Kill()
			<-p.done
			e.t.Fatalf("node %s on port %d did not answer ping within 20 s", id, port)
		}
		if fixed || attempt == 5 {
			e.t.Fatalf("node %s on port %d exited at start", id, port)
		}
		// A clash on a port found free a moment ago: try another one,
		// without what the failed attempt may have persisted.
		_ = os.Remove(p.flush)
		e.t.Logf("node %s on port %d exited at start (port clash?); retrying", id, port)
	}
}

func (e *env) spawn(p *proc) error {
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "---- start %s port %d\n", p.id, p.port)
	args := []string{"-id", p.id, "-host", "127.0.0.1", "-port", strconv.Itoa(p.port),
		"-cookie-file", e.keyFile, "-ring", ringID, "-flush", p.flush, "-log", "debug"}
	p.cmd = exec.Command(e.nodeBin, append(args, p.extra...)...)
	dieWithParent(p.cmd)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start node %s: %w", p.id, err)
	}
	p.done = make(chan struct{})
	go func() {
		_ = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return nil
}

// waitReady polls ping until the node answers (ready) or its process
// exits (exited); neither after 20 s.
func (e *env) waitReady(p *proc) (ready, exited bool) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false, true
		default:
		}
		if r, code := e.cliTimeout(p, 2*time.Second, "ping"); code == 0 && r.OK && string(r.Data) == `"pong"` {
			return true, false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, false
}

// stopAll stops every process (SIGTERM, then SIGKILL after 10 s).
func (e *env) stopAll() {
	for _, p := range e.procs {
		if p.cmd == nil || p.cmd.Process == nil {
			continue
		}
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// dumpLogs prints the tail of every node's log.
func (e *env) dumpLogs() {
	ids := make([]string, 0, len(e.procs))
	for id := range e.procs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		b, err := os.ReadFile(e.procs[id].log)
		if err != nil {
			e.t.Logf("log of %s: %v", id, err)
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) > 300 {
			lines = lines[len(lines)-300:]
		}
		e.t.Logf("==== log of node %s (%s), last %d lines:\n%s", id, e.procs[id].log, len(lines), strings.Join(lines, "\n"))
	}
}

// cliQuiet runs notp-cli against p and returns the parsed reply and the
// exit code (-1 when the CLI could not run or exited 0 without a reply).
//
// The CLI's --timeout is 15 s, above the node's command timeout (4 s), so
// a slow ring operation on a loaded CI machine answers with the node's
// reply rather than a client timeout.
func (e *env) cliQuiet(p *proc, args ...string) (reply, int) {
	return e.cliTimeout(p, 15*time.Second, args...)
}

// cliTimeout is cliQuiet with notp-cli's --timeout set to timeout.
func (e *env) cliTimeout(p *proc, timeout time.Duration, args ...string) (reply, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
	defer cancel()
	full := append([]string{"-I", p.id, "-H", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"--timeout", timeout.String()}, p.cli...)
	full = append(full, args...)
	c := exec.CommandContext(ctx, e.cliBin, full...)
	c.Env = append(os.Environ(), "NOTP_COOKIE="+e.cookie)
	r, code, printed := runCLI(c)
	if !printed && code == 0 {
		return reply{}, -1 // exit 0 without a reply is a failure
	}
	return r, code // a usage error prints no JSON
}

// runCLI runs a notp-cli command and returns its reply, its exit code
// (-1: it could not run) and whether it printed a reply.
func runCLI(c *exec.Cmd) (r reply, code int, printed bool) {
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		return reply{}, -1, false
	}
	if json.Unmarshal(stdout.Bytes(), &r) != nil {
		return reply{}, code, false
	}
	return r, code, true
}

// newEnv returns an environment with built binaries and a fresh cookie;
// its nodes are stopped at the test's end, and their logs printed if it
// failed.
func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{t: t, dir: dir, procs: map[string]*proc{}}
	e.nodeBin, e.cliBin = binaries(t, dir)
	e.keygen()
	t.Cleanup(func() {
		e.stopAll()
		if t.Failed() {
			e.dumpLogs()
		}
	})
	return e
}

// cli runs a command that must succeed (exit 0, ok:true) and returns data.
func (e *env) cli(p *proc, args ...string) json.RawMessage {
	e.t.Helper()
	r, code := e.cliQuiet(p, args...)
	if code != 0 || !r.OK {
		msg := ""
		if r.Error != nil {
			msg = r.Error.Code + " " + r.Error.Message
		}
		e.t.Fatalf("notp-cli %s on %s: exit %d ok=%v %s", strings.Join(args, " "), p.id, code, r.OK, msg)
	}
	return r.Data
}

// cliFail runs a command that must fail with exit 1 and ok:false.
func (e *env) cliFail(p *proc, wantMsg string, args ...string) {
	e.t.Helper()
	r, code := e.cliQuiet(p, args...)
	if code != 1 || r.OK || r.Error == nil {
		e.t.Fatalf("notp-cli %s on %s: exit %d ok=%v, want exit 1 ok:false", strings.Join(args, " "), p.id, code, r.OK)
	}
	if r.Error.Message != wantMsg {
		e.t.Fatalf("notp-cli %s on %s: message %q, want %q", strings.Join(args, " "), p.id, r.Error.Message, wantMsg)
	}
}

func unmarshal[T any](t *testing.T, data json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

// eventually polls cond (which describes what it saw) until it holds.
func (e *env) eventually(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, seen := cond()
		if ok {
			return
		}
		last = seen
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type nodeHealth struct {
	ID     string `json:"id"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
	Health string `json:"health"`
}

type inspectData struct {
	Ring    string `json:"ring"`
	RFactor int    `json:"rfactor"`
	PFactor int    `json:"pfactor"`
	Nodes   []struct {
		ID     string `json:"id"`
		Host   string `json:"host"`
		Port   int    `json:"port"`
		Weight int    `json:"weight"`
	} `json:"nodes"`
	VClock map[string]struct {
		Count uint64 `json:"count"`
	} `json:"vclock"`
}

// summary is the part of inspect that must agree across nodes: the ring id,
// the nodes with addresses and weights in ring order, and the clock counts.
// ids are the ring's node ids, sorted.
func (e *env) summary(p *proc) (s string, ids []string, ok bool) {
	r, code := e.cliQuiet(p, "inspect")
	if code != 0 || !r.OK {
		return fmt.Sprintf("inspect failed (exit %d)", code), nil, false
	}
	var d inspectData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return err.Error(), nil, false
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ring=%s nodes=", d.Ring)
	for _, n := range d.Nodes {
		fmt.Fprintf(&b, "%s@%s:%d/%d,", n.ID, n.Host, n.Port, n.Weight)
		ids = append(ids, n.ID)
	}
	actors := make([]string, 0, len(d.VClock))
	for id := range d.VClock {
		actors = append(actors, id)
	}
	sort.Strings(actors)
	b.WriteString(" vclock=")
	for _, id := range actors {
		fmt.Fprintf(&b, "%s:%d,", id, d.VClock[id].Count)
	}
	sort.Strings(ids)
	return b.String(), ids, true
}

// agree reports whether every node in ps reports the same inspect summary
// and the ring holds exactly the nodes want (sorted ids).
func (e *env) agree(ps []*proc, want []string) (bool, string) {
	var first string
	var seen []string
	for i, p := range ps {
		s, ids, ok := e.summary(p)
		seen = append(seen, p.id+": "+s)
		if !ok || !slices.Equal(ids, want) || (i > 0 && s != first) {
			return false, strings.Join(seen, " | ")
		}
		if i == 0 {
			first = s
		}
	}
	return true, ""
}

// healthOf returns p's view of each ring node's health.
func (e *env) healthOf(p *proc) (map[string]string, []string) {
	r, code := e.cliQuiet(p, "nodes")
	if code != 0 || !r.OK {
		return nil, nil
	}
	var ns []nodeHealth
	if json.Unmarshal(r.Data, &ns) != nil {
		return nil, nil
	}
	h := map[string]string{}
	var order []string
	for _, n := range ns {
		h[n.ID] = n.Health
		order = append(order, n.ID)
	}
	return h, order
}

func (e *env) allAlive(p *proc, ids ...string) (bool, string) {
	h, _ := e.healthOf(p)
	for _, id := range ids {
		if h[id] != "alive" {
			return false, fmt.Sprintf("%s sees %v", p.id, h)
		}
	}
	return len(h) == len(ids), fmt.Sprintf("%s sees %v", p.id, h)
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs  %s", time.Since(began).Seconds(), name) }
	step("start a, b, c")
	a, b := e.start("a", 0), e.start("b", 0)
	// c meets a at start (examples/node's -meet flag).
	c := e.start("c", 0, "-meet", "a@127.0.0.1:"+strconv.Itoa(a.port))
	all := []*proc{a, b, c}
	pstr := func(p *proc) string { return strconv.Itoa(p.port) }

	step("ping")
	// ping
	for _, p := range all {
		if got := unmarshal[string](t, e.cli(p, "ping")); got != "pong" {
			t.Fatalf("ping %s = %q", p.id, got)
		}
	}

	step("meet")
	// meet: a meets b (and c, which met a at its start: a no-op on the
	// ring); the rings unite and memberlist sees all.
	e.eventually("c's -meet flag puts a and c in one ring", 20*time.Second, func() (bool, string) {
		return e.agree([]*proc{a, c}, []string{"a", "c"})
	})
	e.cli(a, "meet", "b", "127.0.0.1", pstr(b))
	e.cli(a, "meet", "c", "127.0.0.1", pstr(c))
	e.eventually("three-node ring everywhere", 30*time.Second, func() (bool, string) {
		return e.agree(all, []string{"a", "b", "c"})
	})
	for _, p := range all {
		e.eventually("all alive on "+p.id, 30*time.Second, func() (bool, string) { return e.allAlive(p, "a", "b", "c") })
	}

	// inspect
	ins := unmarshal[inspectData](t, e.cli(b, "inspect"))
	if ins.Ring != ringID || ins.RFactor != chash.DefaultRFactor || ins.PFactor != 2 || len(ins.Nodes) != 3 {
		t.Fatalf("inspect on b: %+v", ins)
	}

	// nodes: ring order, health alive
	_, order := e.healthOf(c)
	if len(order) != 3 {
		t.Fatalf("nodes on c: %v", order)
	}
	for i, n := range ins.Nodes {
		if order[i] != n.ID {
			t.Fatalf("nodes order %v differs from inspect's ring order %+v", order, ins.Nodes)
		}
	}

	step("lookup, info, events, nodes --status")
	e.checkReadCommands(all)

	step("insert, weights, weight, get, has, monitor")
	// insert (a node that does not run), weights, weight, get, has; a
	// monitor on c prints the insertion and exits 0 on SIGINT.
	mon := e.startMonitor(c)
	xPort, yPort, zPort := strconv.Itoa(freePort(t)), strconv.Itoa(freePort(t)), strconv.Itoa(freePort(t))
	e.cli(a, "insert", "x", "127.0.0.1", xPort, "-w", "5")
	e.eventually("x inserted everywhere", 20*time.Second, func() (bool, string) { return e.agree(all, []string{"a", "b", "c", "x"}) })
	e.eventually("monitor on c prints x's insertion", 10*time.Second, func() (bool, string) {
		return monitorSaw(mon, "inserted", "x@127.0.0.1:"+xPort)
	})
	e.stopMonitor(mon)
	w := unmarshal[map[string]int](t, e.cli(b, "weights"))
	def := chash.DefaultRFactor
	if len(w) != 4 || w["x"] != 5 || w["a"] != def || w["b"] != def || w["c"] != def {
		t.Fatalf("weights on b: %v", w)
	}
	if got := unmarshal[int](t, e.cli(c, "weight", "x")); got != 5 {
		t.Fatalf("weight x on c = %d", got)
	}
	e.cliFail(c, "'nope' is not defined in this ring.", "weight", "nope")
	type nodeJSON struct {
		ID   string `json:"id"`
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	if got := unmarshal[nodeJSON](t, e.cli(b, "get", "x")); got.ID != "x" || got.Host != "127.0.0.1" || strconv.Itoa(got.Port) != xPort {
		t.Fatalf("get x on b = %+v", got)
	}
	e.cliFail(b, "'nope' is not defined in this ring.", "get", "nope")
	if !unmarshal[bool](t, e.cli(a, "has", "x")) || unmarshal[bool](t, e.cli(a, "has", "nope")) {
		t.Fatal("has on a is wrong")
	}

	step("update")
	// update: weight 7
	e.cli(b, "update", "x", "127.0.0.1", xPort, "7")
	e.eventually("x weight 7 everywhere", 20*time.Second, func() (bool, string) {
		for _, p := range all {
			if r, code := e.cliQuiet(p, "weight", "x"); code != 0 || string(r.Data) != "7" {
				return false, p.id + " weight x = " + string(r.Data)
			}
		}
		return true, ""
	})

	step("minsert, ownership, mremove, remove")
	// minsert (self filtered) and mremove
	e.cli(c, "minsert", "y", "127.0.0.1", yPort, "c", "127.0.0.1", pstr(c), "z", "127.0.0.1", zPort, "-w", "2")
	e.eventually("y and z inserted everywhere", 20*time.Second, func() (bool, string) {
		return e.agree(all, []string{"a", "b", "c", "x", "y", "z"})
	})
	if w := unmarshal[map[string]int](t, e.cli(a, "weights")); w["y"] != 2 || w["z"] != 2 || w["c"] != chash.DefaultRFactor {
		t.Fatalf("weights after minsert: %v", w)
	}

	// ownership: one share per node, sorted by id, summing to 1
	shares := unmarshal[[]struct {
		ID    string  `json:"id"`
		Share float64 `json:"share"`
	}](t, e.cli(a, "ownership"))
	sum := 0.0
	var ids []string
	for _, s := range shares {
		sum += s.Share
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []string{"a", "b", "c", "x", "y", "z"}) || math.Abs(sum-1) > 1e-9 {
		t.Fatalf("ownership: %+v (sum %v)", shares, sum)
	}

	e.cli(a, "mremove", "y", "127.0.0.1", yPort, "z", "127.0.0.1", zPort)
	e.cli(b, "remove", "x", "127.0.0.1", xPort, "-f") // forced: no wait for x's (never opened) link
	e.eventually("x, y, z removed everywhere", 20*time.Second, func() (bool, string) {
		return e.agree(all, []string{"a", "b", "c"})
	})
	if unmarshal[bool](t, e.cli(c, "has", "x")) {
		t.Fatal("has x after remove")
	}

	step("join error")
	// join while in a ring
	e.cliFail(a, "Node already belongs to ring 'ring'", "join", "other")
	// A usage error is caught by notp-cli (exit 2) before anything is sent.
	if _, code := e.cliQuiet(a, "insert", "x", "127.0.0.1"); code != 2 {
		t.Fatalf("incomplete insert: exit %d, want 2", code)
	}
	step("SIGKILL b")
	// SIGKILL b: the others see it suspect or dead.
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	for _, p := range []*proc{a, c} {
		e.eventually(p.id+" sees b failed", 40*time.Second, func() (bool, string) {
			h, _ := e.healthOf(p)
			return h["b"] == "suspect" || h["b"] == "dead", fmt.Sprintf("%s sees %v", p.id, h)
		})
	}

	step("restart b")
	// Restart b from its flush file on the same port: it rejoins and all
	// three agree again.
	b = e.start("b", b.port)
	all = []*proc{a, b, c}
	e.eventually("rings agree after b's restart", 40*time.Second, func() (bool, string) {
		return e.agree(all, []string{"a", "b", "c"})
	})
	for _, p := range all {
		e.eventually("all alive on "+p.id+" after restart", 40*time.Second, func() (bool, string) {
			return e.allAlive(p, "a", "b", "c")
		})
	}

	step("keys: rotate the cookie")
	e.rotateCookie(all)

	step("leave, join")
	// leave: c leaves; it is alone and in no ring, the others drop it.
	e.cli(c, "leave")
	if d := unmarshal[inspectData](t, e.cli(c, "inspect")); d.Ring != "" || len(d.Nodes) != 1 || d.Nodes[0].ID != "c" {
		t.Fatalf("inspect on c after leave: %+v", d)
	}
	e.eventually("a and b drop c", 30*time.Second, func() (bool, string) {
		return e.agree([]*proc{a, b}, []string{"a", "b"})
	})
	// join: c joins a ring again; a second join fails with notp's text.
	e.cli(c, "join", "again")
	e.cliFail(c, "Node already belongs to ring 'again'", "join", "again")

	step("TLS node")
	// A node that speaks only mutual TLS (examples/node -tls-cert/-tls-key,
	// trusting its own self-signed certificate), with busy polling: the
	// CLI reaches it with its TLS flags, and without them gets exit 1.
	certFile, keyFile := testcert.New(t).Files(t)
	d := e.startWith("d", 0, []string{"--tls-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile},
		"-tls-cert", certFile, "-tls-key", keyFile, "-busy-poll", "50us")
	e.cli(d, "insert", "x", "10.0.0.9", "7022")
	if got := unmarshal[bool](t, e.cli(d, "has", "x")); !got {
		t.Fatal("has x on the TLS node = false")
	}
	plain := *d
	plain.cli = nil
	if r, code := e.cliTimeout(&plain, 3*time.Second, "ping"); code != 1 || r.OK {
		t.Fatalf("plain notp-cli against the TLS node: exit %d, %+v", code, r)
	}
}
