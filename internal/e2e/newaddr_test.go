//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// flushedNodes returns the node IDs in p's flush file, as a restart of p
// would load them. It reads a copy, so Load's removal of leftover
// temporary files cannot touch a flush p is writing; the copy is made in
// dir, overwriting the last one.
func (e *env) flushedNodes(p *proc, dir string) ([]string, error) {
	b, err := os.ReadFile(p.flush)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "state")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	k, err := kernel.New(kernel.Config{Node: notp.Node{ID: p.id, Host: "127.0.0.1", Port: p.port}, Cookie: e.cookie})
	if err != nil {
		return nil, err
	}
	defer k.Close()
	r, err := gossip.New(k, gossip.Config{FlushPath: path})
	if err != nil {
		return nil, err
	}
	if _, err := r.Load(); err != nil {
		return nil, err
	}
	var ids []string
	for _, n := range r.View().Nodes() {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

// seenAt reports whether p's nodes command shows id alive at port.
func (e *env) seenAt(p *proc, id string, port int) (bool, string) {
	r, code := e.cliQuiet(p, "nodes")
	if code != 0 || !r.OK {
		return false, fmt.Sprintf("nodes on %s failed (exit %d)", p.id, code)
	}
	var ns []nodeHealth
	if err := json.Unmarshal(r.Data, &ns); err != nil {
		return false, err.Error()
	}
	for _, n := range ns {
		if n.ID == id {
			return n.Health == "alive" && n.Port == port, fmt.Sprintf("%s sees %s %s at port %d", p.id, id, n.Health, n.Port)
		}
	}
	return false, fmt.Sprintf("%s has no %s: %s", p.id, id, r.Data)
}

// A node killed with SIGKILL and restarted with its flush file on a new
// port, as a rescheduled container comes back at a new address, is seen
// alive at the new port by the other nodes within seconds, with the
// failure detector's default (LAN) timings, once they have declared it
// dead: memberlist lets the dead
// member's name move to the new address, and the reconnect loop joins it
// there as soon as the ring has the new address.
func TestRestartAtNewPort(t *testing.T) {
	e := newEnv(t)
	a, b, c := e.start("a", 0), e.start("b", 0), e.start("c", 0)
	e.cli(a, "meet", "b", "127.0.0.1", strconv.Itoa(b.port))
	e.cli(a, "meet", "c", "127.0.0.1", strconv.Itoa(c.port))
	all := []*proc{a, b, c}
	e.eventually("three-node ring everywhere", 30*time.Second, func() (bool, string) {
		return e.agree(all, []string{"a", "b", "c"})
	})
	for _, p := range all {
		e.eventually("all alive on "+p.id, 30*time.Second, func() (bool, string) { return e.allAlive(p, "a", "b", "c") })
	}

	// The state is written at most once a second: a kill before c has
	// saved the three-node ring would restart it knowing nobody, and
	// nobody knows its new port.
	copyDir := t.TempDir()
	e.eventually("c's flush file holding the three-node ring", 30*time.Second, func() (bool, string) {
		ids, err := e.flushedNodes(c, copyDir)
		return err == nil && slices.Equal(ids, []string{"a", "b", "c"}), fmt.Sprintf("c's flush file: %v %v", ids, err)
	})

	oldPort := c.port
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	killed := time.Now()
	// Restart only once a and b have declared c dead: until then they
	// would report its old incarnation alive, and the test would prove
	// nothing about the new address.
	for _, p := range []*proc{a, b} {
		e.eventually(p.id+" seeing c dead", 30*time.Second, func() (bool, string) {
			h, _ := e.healthOf(p)
			return h["c"] == "dead", fmt.Sprintf("%s sees %v", p.id, h)
		})
	}
	c = e.start("c", 0)
	if c.port == oldPort {
		t.Fatalf("c restarted on its old port %d", oldPort)
	}
	restarted := time.Now()
	for _, p := range []*proc{a, b} {
		e.eventually(p.id+" seeing c alive at its new port", 30*time.Second, func() (bool, string) {
			return e.seenAt(p, "c", c.port)
		})
	}
	t.Logf("c killed, restarted on port %d (was %d) %v later; a and b see it alive there %v after the restart",
		c.port, oldPort, restarted.Sub(killed).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	e.eventually("c seeing a and b alive", 10*time.Second, func() (bool, string) { return e.allAlive(c, "a", "b", "c") })
	e.eventually("rings agree", 10*time.Second, func() (bool, string) {
		return e.agree([]*proc{a, b, c}, []string{"a", "b", "c"})
	})
}
