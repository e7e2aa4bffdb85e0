//go:build e2e && linux

package e2e

// A partition between real node processes: five examples/node processes,
// each in its own Linux network namespace, joined by veth pairs to
// bridges in a hub namespace. Moving two nodes' veth ends to a second
// bridge splits the cluster 2|3; moving them back heals it. The addresses
// (198.18.0.0/24, the benchmarking range) exist only inside the test's
// namespaces, so no packet leaves the machine, and the host's own network
// namespace is never touched.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nsCookie is at least 32 characters, as nodes require long cookies.
const nsCookie = "e2e-netns-cookie-0123456789abcdef"

// nsNode is one node process in its own namespace.
type nsNode struct {
	id, ns, ip, veth, peer string
	flush, log             string
	cmd                    *exec.Cmd
	done                   chan struct{}
}

type nsEnv struct {
	t               *testing.T
	nodeBin, cliBin string
	hub             string
	nodes           []*nsNode
}

// ipCmd runs ip with args and returns its error with its output.
func ipCmd(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (e *nsEnv) ip(args ...string) {
	e.t.Helper()
	if err := ipCmd(args...); err != nil {
		e.t.Fatal(err)
	}
}

// addNS creates namespace name, deleted at cleanup (after the processes
// in it are stopped: cleanups run last-registered first, and the node
// processes' cleanup is registered later).
func (e *nsEnv) addNS(name string) {
	e.t.Helper()
	e.ip("netns", "add", name)
	e.t.Cleanup(func() {
		if err := ipCmd("netns", "del", name); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
}

// setup builds the hub with bridges br0 and br1 and five node namespaces
// on br0. It skips the test when network namespaces cannot be created.
func (e *nsEnv) setup(run string) {
	e.t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		e.t.Skipf("skipping: the ip command (iproute2) is not installed, so network namespaces cannot be set up: %v", err)
	}
	e.hub = "notp" + run + "h"
	if err := ipCmd("netns", "add", e.hub); err != nil {
		e.t.Skipf("skipping: cannot create a network namespace (needs root, or CAP_SYS_ADMIN and CAP_NET_ADMIN): %v", err)
	}
	e.t.Cleanup(func() {
		if err := ipCmd("netns", "del", e.hub); err != nil {
			e.t.Errorf("cleanup: %v", err)
		}
	})
	for _, br := range []string{"br0", "br1"} {
		e.ip("-n", e.hub, "link", "add", br, "type", "bridge")
		e.ip("-n", e.hub, "link", "set", br, "up")
	}
	for i := 1; i <= 5; i++ {
		n := &nsNode{
			id: fmt.Sprintf("n%d", i), ns: fmt.Sprintf("notp%sn%d", run, i), ip: fmt.Sprintf("198.18.0.%d", 10+i),
			veth: "eth0", peer: fmt.Sprintf("p%d", i),
		}
		e.addNS(n.ns)
		// The pair is made inside the hub and one end moved into the
		// node's namespace: nothing appears in the host's namespace.
		e.ip("-n", e.hub, "link", "add", n.peer, "type", "veth", "peer", "name", n.veth, "netns", n.ns)
		e.ip("-n", e.hub, "link", "set", n.peer, "master", "br0", "up")
		e.ip("-n", n.ns, "addr", "add", n.ip+"/24", "dev", n.veth)
		e.ip("-n", n.ns, "link", "set", n.veth, "up")
		e.ip("-n", n.ns, "link", "set", "lo", "up") // notp-cli's own kernel listens on 127.0.0.1
		e.nodes = append(e.nodes, n)
	}
}

// move attaches the hub ends of ns' pairs to bridge br.
func (e *nsEnv) move(br string, ns ...*nsNode) {
	e.t.Helper()
	for _, n := range ns {
		e.ip("-n", e.hub, "link", "set", n.peer, "master", br)
	}
}

// start runs the node process inside its namespace and waits for ping.
func (e *nsEnv) start(n *nsNode) {
	e.t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	n.cmd = exec.Command("ip", "netns", "exec", n.ns, e.nodeBin, "-id", n.id, "-host", n.ip, "-port", "7022",
		"-cookie", nsCookie, "-ring", ringID, "-flush", n.flush, "-log", "debug")
	dieWithParent(n.cmd) // ip execs the node, which keeps the setting
	n.cmd.Stdout, n.cmd.Stderr = f, f
	if err := n.cmd.Start(); err != nil {
		f.Close()
		e.t.Fatalf("start %s: %v", n.id, err)
	}
	n.done = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		f.Close()
		close(n.done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if r, code := e.cli(n, 2*time.Second, "ping"); code == 0 && r.OK && string(r.Data) == `"pong"` {
			return
		}
		select {
		case <-n.done:
			e.t.Fatalf("node %s exited at start", n.id)
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("node %s did not answer ping within 20 s", n.id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends every node process: SIGTERM, then SIGKILL after 10 s.
func (e *nsEnv) stop() {
	for _, n := range e.nodes {
		if n.cmd == nil || n.cmd.Process == nil {
			continue
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	}
}

// cli runs notp-cli inside n's namespace against n and returns the reply
// and exit code (-1: the CLI could not run, or printed no reply).
func (e *nsEnv) cli(n *nsNode, timeout time.Duration, args ...string) (reply, int) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+15*time.Second)
	defer cancel()
	full := append([]string{"netns", "exec", n.ns, e.cliBin, "-I", n.id, "-H", n.ip, "-p", "7022", "-a", nsCookie,
		"--timeout", timeout.String()}, args...)
	r, code, printed := runCLI(exec.CommandContext(ctx, "ip", full...))
	if !printed {
		return reply{}, -1
	}
	return r, code
}

// mustCLI runs a command that must succeed.
func (e *nsEnv) mustCLI(n *nsNode, args ...string) error {
	r, code := e.cli(n, 15*time.Second, args...)
	if code != 0 || !r.OK {
		msg := ""
		if r.Error != nil {
			msg = r.Error.Code + " " + r.Error.Message
		}
		return fmt.Errorf("notp-cli %s on %s: exit %d %s", strings.Join(args, " "), n.id, code, msg)
	}
	return nil
}

// summary is n's ring as seen by inspect (ids with addresses and weights
// in ring order, and clock counts) and its sorted ids.
func (e *nsEnv) summary(n *nsNode) (string, []string) {
	r, code := e.cli(n, 15*time.Second, "inspect")
	if code != 0 || !r.OK {
		return fmt.Sprintf("inspect failed (exit %d)", code), nil
	}
	var d inspectData
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return err.Error(), nil
	}
	var b strings.Builder
	var ids []string
	fmt.Fprintf(&b, "ring=%s nodes=", d.Ring)
	for _, nd := range d.Nodes {
		fmt.Fprintf(&b, "%s@%s:%d/%d,", nd.ID, nd.Host, nd.Port, nd.Weight)
		ids = append(ids, nd.ID)
	}
	var counts []string
	for id, c := range d.VClock {
		counts = append(counts, fmt.Sprintf("%s:%d", id, c.Count))
	}
	sort.Strings(counts)
	sort.Strings(ids)
	return b.String() + " vclock=" + strings.Join(counts, ","), ids
}

// waitAgree polls until every node of ns reports the same ring holding
// exactly want.
func (e *nsEnv) waitAgree(what string, timeout time.Duration, ns []*nsNode, want []string) {
	e.t.Helper()
	want = slices.Sorted(slices.Values(want))
	deadline := time.Now().Add(timeout)
	for {
		var seen []string
		ok := true
		first := ""
		for i, n := range ns {
			s, ids := e.summary(n)
			seen = append(seen, n.id+": "+s)
			if !slices.Equal(ids, want) || (i > 0 && s != first) {
				ok = false
				break
			}
			if i == 0 {
				first = s
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %v waiting for %s; last seen: %s", timeout, what, strings.Join(seen, " | "))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitHealth polls n's nodes command until id is alive (alive true) or
// anything but alive (alive false), failing the test at deadline.
func (e *nsEnv) waitHealth(what string, n *nsNode, id string, alive bool, deadline time.Time) {
	e.t.Helper()
	seen := ""
	for {
		if r, code := e.cli(n, 15*time.Second, "nodes"); code == 0 && r.OK {
			var ns []nodeHealth
			if json.Unmarshal(r.Data, &ns) == nil {
				for _, h := range ns {
					if h.ID == id {
						seen = h.Health
					}
				}
			}
		}
		if (seen == "alive") == alive && seen != "" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s; last health %q", what, seen)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (e *nsEnv) dumpLogs() {
	for _, n := range e.nodes {
		b, err := os.ReadFile(n.log)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		if len(lines) > 200 {
			lines = lines[len(lines)-200:]
		}
		e.t.Logf("==== log of %s, last %d lines:\n%s", n.id, len(lines), strings.Join(lines, "\n"))
	}
}

// newNSEnv sets up the namespaces (see setup, which skips the test where
// they cannot be made) under names unique to this run, so parallel or
// leftover runs never clash, and the binaries; the nodes are stopped at
// the test's end, and their logs printed if it failed.
func newNSEnv(t *testing.T) *nsEnv {
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	dir := t.TempDir()
	e := &nsEnv{t: t}
	e.setup(hex.EncodeToString(rb[:]))
	e.nodeBin, e.cliBin = binaries(t, dir)
	for _, n := range e.nodes {
		n.flush, n.log = filepath.Join(dir, n.id+".ring"), filepath.Join(dir, n.id+".log")
	}
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			e.dumpLogs()
		}
	})
	return e
}

func TestPartitionInNetworkNamespaces(t *testing.T) {
	e := newNSEnv(t)
	began := time.Now()
	step := func(name string) { t.Logf("%6.2fs  %s", time.Since(began).Seconds(), name) }

	step("start five nodes in their namespaces")
	for _, n := range e.nodes {
		e.start(n)
	}
	ids := []string{"n1", "n2", "n3", "n4", "n5"}
	for _, n := range e.nodes[1:] {
		if err := e.mustCLI(e.nodes[0], "meet", n.id, n.ip, "7022"); err != nil {
			t.Fatal(err)
		}
	}
	e.waitAgree("the five-node ring", 60*time.Second, e.nodes, ids)

	step("split 2|3 and insert on both sides at once")
	left, right := e.nodes[:2], e.nodes[2:]
	e.move("br1", left...)
	var wg sync.WaitGroup
	errs := make(chan error, len(e.nodes))
	var leftWant, rightWant []string
	for i, n := range e.nodes {
		x := "x" + n.id
		if i < 2 {
			leftWant = append(leftWant, x)
		} else {
			rightWant = append(rightWant, x)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A node that exists nowhere: inserting it needs no peer.
			if err := e.mustCLI(n, "insert", x, fmt.Sprintf("198.18.0.%d", 100+i), "7022", "-w", "2"); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Each side sees its own inserts and none of the other's: the split
	// is real.
	e.waitAgree("the 2-side", 60*time.Second, left, append(slices.Clone(ids), leftWant...))
	e.waitAgree("the 3-side", 60*time.Second, right, append(slices.Clone(ids), rightWant...))

	// Let the failure detectors declare the other side failed, so the
	// heal goes through memberlist's rejoin and not only through TCP
	// retransmissions of connections that outlived a short split.
	step("wait for each side to see the other failed")
	failBy := time.Now().Add(60 * time.Second)
	e.waitHealth("n1 seeing n3 failed", e.nodes[0], "n3", false, failBy)
	e.waitHealth("n3 seeing n1 failed", e.nodes[2], "n1", false, failBy)

	step("heal")
	e.move("br0", left...)
	// Rings equal and every node alive everywhere within 15 s of the
	// heal: the reconnect loop joins memberlist through members it sees
	// dead (2 s after their death, backing off), and the join's state
	// exchange merges the rings and revives the failure detector. Without that the
	// halves waited for memberlist's gossip to the dead or for TCP to
	// retransmit over connections that outlived the split (18 to 65 s).
	healBy := time.Now().Add(15 * time.Second)
	e.waitAgree("every ring equal after the heal", time.Until(healBy), e.nodes, append(append(slices.Clone(ids), leftWant...), rightWant...))
	step("rings agree; wait for every node to see every node alive")
	for _, n := range e.nodes {
		for _, id := range ids {
			e.waitHealth(n.id+" seeing "+id+" alive", n, id, true, healBy)
		}
	}
	step("done")
}
