//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// checkReadCommands runs the commands that read a node's state without
// changing it — lookup, info, events and nodes --status — on a ring of
// the nodes ps, all alive.
func (e *env) checkReadCommands(ps []*proc) {
	t := e.t
	t.Helper()
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.id
	}
	slices.Sort(ids)

	// lookup: every node names the same owner and preference list, of
	// pfactor+1 distinct ring nodes by default, or the asked length.
	type node struct {
		ID   string `json:"id"`
		Host string `json:"host"`
		Port int    `json:"port"`
	}
	type lookupData struct {
		Key        string `json:"key"`
		Owner      *node  `json:"owner"`
		Preference []node `json:"preference"`
	}
	var first string
	for _, p := range ps {
		d := unmarshal[lookupData](t, e.cli(p, "lookup", "user:42"))
		var pref []string
		for _, n := range d.Preference {
			pref = append(pref, n.ID)
		}
		sorted := slices.Sorted(slices.Values(pref))
		if d.Key != "user:42" || d.Owner == nil || len(pref) != 3 || pref[0] != d.Owner.ID || !slices.Equal(sorted, ids) {
			t.Fatalf("lookup user:42 on %s: %+v, want the owner first among %v", p.id, d, ids)
		}
		if got := strings.Join(pref, ","); first == "" {
			first = got
		} else if got != first {
			t.Fatalf("lookup user:42: %s's preference list %s differs from %s's %s", p.id, got, ps[0].id, first)
		}
	}
	if d := unmarshal[lookupData](t, e.cli(ps[1], "lookup", "user:42", "1")); len(d.Preference) != 1 || d.Owner == nil || d.Preference[0].ID != d.Owner.ID {
		t.Fatalf("lookup user:42 1: %+v, want the owner alone", d)
	}

	// info: the ring's size and health, and traffic counters that moved.
	info := e.info(ps[0])
	if info.Node.ID != ps[0].id || info.Ring != ringID || info.Nodes != len(ps) || info.Health["alive"] != len(ps) ||
		info.Tokens != len(ps)*info.RFactor || info.Version == "" || info.UptimeSeconds <= 0 {
		t.Fatalf("info on %s: %+v", ps[0].id, info)
	}
	if info.Kernel["FramesIn"] == 0 || info.Memberlist["PacketsIn"]+info.Memberlist["StreamsIn"] == 0 {
		t.Fatalf("info on %s: counters did not move: kernel %v, memberlist %v", ps[0].id, info.Kernel, info.Memberlist)
	}

	// events: since 0 returns no events and the cursor; from 1 the node's
	// log holds its ring's changes and its log lines, numbered from 1 in
	// order.
	type eventsData struct {
		Next   uint64 `json:"next"`
		Missed uint64 `json:"missed"`
		Events []struct {
			Seq   uint64   `json:"seq"`
			Level string   `json:"level"`
			Kind  string   `json:"kind"`
			Ring  string   `json:"ring"`
			Nodes []string `json:"nodes"`
		} `json:"events"`
	}
	cur := unmarshal[eventsData](t, e.cli(ps[0], "events", "0"))
	if len(cur.Events) != 0 || cur.Next == 0 {
		t.Fatalf("events 0 on %s: %+v, want no events and a cursor", ps[0].id, cur)
	}
	all := unmarshal[eventsData](t, e.cli(ps[0], "events", "1"))
	kinds := map[string]bool{}
	for i, ev := range all.Events {
		if ev.Seq != uint64(i+1) || ev.Level == "" {
			t.Fatalf("events 1 on %s: event %d is %+v", ps[0].id, i, ev)
		}
		kinds[ev.Kind] = true
	}
	if !kinds["inserted"] || !kinds["log"] {
		t.Fatalf("events 1 on %s: kinds %v, want ring changes and log lines", ps[0].id, kinds)
	}

	// nodes --status filters by health: all alive, none dead.
	if got := unmarshal[[]nodeHealth](t, e.cli(ps[2], "nodes", "--status", "alive")); len(got) != len(ps) {
		t.Fatalf("nodes --status alive on %s: %+v", ps[2].id, got)
	}
	if got := unmarshal[[]nodeHealth](t, e.cli(ps[2], "nodes", "--status", "dead")); len(got) != 0 {
		t.Fatalf("nodes --status dead on %s: %+v", ps[2].id, got)
	}
}

// infoData is the part of info's data the tests read.
type infoData struct {
	Node struct {
		ID string `json:"id"`
	} `json:"node"`
	Version       string            `json:"version"`
	UptimeSeconds float64           `json:"uptime_seconds"`
	Ring          string            `json:"ring"`
	Nodes         int               `json:"nodes"`
	Tokens        int               `json:"tokens"`
	RFactor       int               `json:"rfactor"`
	Health        map[string]int    `json:"health"`
	Kernel        map[string]uint64 `json:"-"`
	Memberlist    map[string]uint64 `json:"memberlist"`
}

// info runs info on p. Kernel holds the kernel's counters by field name
// (the call latency histogram is left out).
func (e *env) info(p *proc) infoData {
	raw := e.cli(p, "info")
	d := unmarshal[infoData](e.t, raw)
	var k struct {
		Kernel map[string]json.RawMessage `json:"kernel"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		e.t.Fatal(err)
	}
	d.Kernel = map[string]uint64{}
	for name, v := range k.Kernel {
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			d.Kernel[name] = n
		}
	}
	return d
}

// kernelCounter returns one of info's kernel counters on p.
func (e *env) kernelCounter(p *proc, name string) uint64 {
	return e.info(p).Kernel[name]
}

// monitor is a running one-shot notp-cli monitor.
type monitor struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	seen []string // lines printed so far
	done chan error
}

// startMonitor starts notp-cli monitor against p, its JSON lines
// collected as they come, and returns once it prints what p logs.
func (e *env) startMonitor(p *proc, args ...string) *monitor {
	e.t.Helper()
	full := append([]string{"-I", p.id, "-H", "127.0.0.1", "-p", strconv.Itoa(p.port), "--timeout", "15s"}, p.cli...)
	c := exec.Command(e.cliBin, append(append(full, "monitor"), args...)...)
	c.Env = append(os.Environ(), "NOTP_COOKIE="+e.cookie)
	out, err := c.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	m := &monitor{cmd: c, done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m.mu.Lock()
			m.seen = append(m.seen, sc.Text())
			m.mu.Unlock()
		}
		m.done <- c.Wait()
	}()
	e.t.Cleanup(func() { _ = c.Process.Kill() })
	// monitor prints only what the node logs after its first poll. Each
	// notp-cli connection to p logs a line at info ("peer connected"):
	// once the monitor prints one, later events reach it.
	e.eventually("monitor on "+p.id+" prints a connection's log line", 20*time.Second, func() (bool, string) {
		e.cli(p, "ping")
		lines := m.lines()
		return len(lines) > 0, fmt.Sprintf("%d lines", len(lines))
	})
	return m
}

// lines returns the lines the monitor printed so far.
func (m *monitor) lines() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

// stop sends the monitor SIGINT and fails the test unless it exits 0
// within 10 s.
func (e *env) stopMonitor(m *monitor) {
	e.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGINT); err != nil {
		e.t.Fatal(err)
	}
	select {
	case err := <-m.done:
		if err != nil {
			e.t.Fatalf("monitor after SIGINT: %v, want exit 0", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Fatal("monitor still running 10 s after SIGINT")
	}
}

// monitorSaw reports whether m printed an event of this kind naming node.
func monitorSaw(m *monitor, kind, node string) (bool, string) {
	lines := m.lines()
	for _, l := range lines {
		var ev struct {
			Kind  string   `json:"kind"`
			Nodes []string `json:"nodes"`
		}
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Kind == kind && slices.Contains(ev.Nodes, node) {
			return true, ""
		}
	}
	return false, fmt.Sprintf("%d lines: %s", len(lines), strings.Join(lines, " | "))
}

// keysData is notp-cli keys' data.
type keysData struct {
	Live  int `json:"live"`
	Acked int `json:"acked"`
	Keys  []struct {
		ID      string `json:"id"`
		Nodes   int    `json:"nodes"`
		Primary int    `json:"primary"`
	} `json:"keys"`
	Nodes []struct {
		Node string `json:"node"`
		OK   bool   `json:"ok"`
	} `json:"nodes"`
}

// rotateCookie replaces the cluster's cookie with a new one through
// notp-cli keys — install, use, remove — on the ring of ps, all alive,
// then checks that the old cookie is refused and the new one works, and
// writes the new one to the key file that nodes started later read.
func (e *env) rotateCookie(ps []*proc) {
	t := e.t
	t.Helper()
	out, err := exec.Command(e.cliBin, "keygen").Output()
	if err != nil {
		t.Fatalf("notp-cli keygen: %v", err)
	}
	old, next := e.cookie, strings.TrimSuffix(string(out), "\n")
	keys := func(args ...string) keysData {
		d := unmarshal[keysData](t, e.cli(ps[0], append([]string{"keys"}, args...)...))
		if d.Live != len(ps) || d.Acked != len(ps) || len(d.Nodes) != len(ps) {
			t.Fatalf("keys %s: %+v, want all %d nodes asked and acknowledging", args[0], d, len(ps))
		}
		return d
	}
	if d := keys("install", next); len(d.Keys) != 2 || d.Keys[0].Nodes != len(ps) || d.Keys[1].Nodes != len(ps) {
		t.Fatalf("keys install: %+v, want two keys on every node", d)
	}
	d := keys("use", next)
	primary := ""
	for _, k := range d.Keys {
		if k.Primary == len(ps) {
			primary = k.ID
		}
	}
	if primary == "" {
		t.Fatalf("keys use: %+v, want one key primary on every node", d)
	}
	// The key in use cannot be removed: every node refuses, exit 1.
	r, code := e.cliQuiet(ps[0], "keys", "remove", primary)
	if code != 1 || r.OK {
		t.Fatalf("keys remove of the key in use: exit %d, %+v; want exit 1", code, r)
	}
	if d := keys("remove", old); len(d.Keys) != 1 || d.Keys[0].ID != primary || d.Keys[0].Primary != len(ps) {
		t.Fatalf("keys remove: %+v, want only %s left, primary everywhere", d, primary)
	}

	// The old cookie is refused by every node (a failed hello counted),
	// the new one answers.
	e.cookie = next
	before := e.kernelCounter(ps[1], "RejectedHandshake")
	e.cookie = old
	if r, code := e.cliTimeout(ps[1], 3*time.Second, "ping"); code != 1 || r.OK {
		t.Fatalf("ping with the removed cookie: exit %d, %+v; want exit 1", code, r)
	}
	e.cookie = next
	if after := e.kernelCounter(ps[1], "RejectedHandshake"); after <= before {
		t.Fatalf("RejectedHandshake on %s: %d before the old cookie's ping, %d after", ps[1].id, before, after)
	}
	if err := os.WriteFile(e.keyFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	// memberlist's keyring followed: the nodes still see each other alive.
	for _, p := range ps {
		e.eventually("all alive on "+p.id+" after the rotation", 30*time.Second, func() (bool, string) {
			ids := make([]string, len(ps))
			for i, q := range ps {
				ids[i] = q.id
			}
			return e.allAlive(p, ids...)
		})
	}
}
