package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// keysCluster starts three fake nodes; the first lists them, n0 alive,
// n1 suspect (still running) and n2 dead, and a node n3 that left (nothing
// runs at its address). Each answers keys with its own node name.
func keysCluster(t *testing.T) ([]*kernel.Kernel, []*fakeServer) {
	t.Helper()
	var ks []*kernel.Kernel
	var fs []*fakeServer
	for i := range 3 {
		k := startKernel(t, fmt.Sprintf("n%d", i), testCookie)
		f := startFake(t, k)
		f.set(command.Keys, keysReply(k.Self().ID))
		ks, fs = append(ks, k), append(fs, f)
	}
	var nodes []map[string]any
	for i, h := range []string{"alive", "suspect", "dead"} {
		self := ks[i].Self()
		nodes = append(nodes, map[string]any{"id": self.ID, "host": self.Host, "port": self.Port, "health": h})
	}
	nodes = append(nodes, map[string]any{"id": "n3", "host": "127.0.0.1", "port": closedPort(t), "health": "left"})
	setNodes(fs[0], nodes)
	return ks, fs
}

// keysReply is node's ok reply to keys: it holds and proves with testCookie.
func keysReply(node string) command.Reply {
	d, _ := json.Marshal(command.KeysData{Node: node, Keys: []command.KeyInfo{{ID: kernel.KeyID(testCookie), Primary: true}}})
	return command.Reply{OK: true, Data: d}
}

// setNodes makes f answer the nodes command with nodes.
func setNodes(f *fakeServer, nodes []map[string]any) {
	d, _ := json.Marshal(nodes)
	f.set(command.Nodes, command.Reply{OK: true, Data: d})
}

// closedPort returns a TCP port of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// keysCalls returns the keys requests f received.
func keysCalls(f *fakeServer) []command.Args {
	var out []command.Args
	for _, c := range f.got() {
		if c.event == command.Keys {
			out = append(out, c.args)
		}
	}
	return out
}

// keys goes to every node neither dead nor left (the suspect one
// included; the dead and left ones are skipped and named), with a sealed
// cookie for install and a fingerprint for use and remove, and exits 0 only
// when every one of them acknowledged.
func TestOneShotKeys(t *testing.T) {
	ks, fs := keysCluster(t)
	const newCookie = "a new cookie for keys 0123456789"
	code, out, errs := cli(ks[0], testCookie, 5*time.Second, "keys", "install", newCookie)
	if code != exitOK || errs != "" {
		t.Fatalf("keys install: exit %d, stderr %q\n%s", code, errs, out)
	}
	if strings.Contains(out, newCookie) {
		t.Fatal("keys install printed the cookie")
	}
	r := decodeOutput(t, out)
	var res keysResult
	if err := json.Unmarshal(r.Data, &res); err != nil || res.Live != 2 || res.Acked != 2 ||
		strings.Join(res.Skipped, ",") != "n2 (dead),n3 (left)" {
		t.Fatalf("keys install data %s, %v", r.Data, err)
	}
	for i, f := range fs[:2] {
		got := keysCalls(f)
		if len(got) != 1 || got[0].KeyOp != command.KeyInstall || strings.Contains(string(got[0].Sealed), newCookie) {
			t.Fatalf("n%d got %+v", i, got)
		}
		// The seal opens with the cluster's cookie, to the new cookie.
		id, err := ks[i].Keyring().InstallSealed(got[0].Sealed)
		if err != nil || id != kernel.KeyID(newCookie) {
			t.Fatalf("n%d: the sealed cookie opens to %q, %v", i, id, err)
		}
	}
	if len(keysCalls(fs[2])) != 0 {
		t.Fatal("the dead node was sent keys")
	}

	// use with a cookie sends its fingerprint; remove with a fingerprint
	// sends it as is.
	if code, out, _ := cli(ks[0], testCookie, 5*time.Second, "keys", "use", newCookie); code != exitOK {
		t.Fatalf("keys use: exit %d\n%s", code, out)
	}
	if code, out, _ := cli(ks[0], testCookie, 5*time.Second, "keys", "remove", kernel.KeyID(testCookie), "--format", "text"); code != exitOK {
		t.Fatalf("keys remove: exit %d\n%s", code, out)
	}
	got := keysCalls(fs[1])
	if len(got) != 3 || got[1].KeyID != kernel.KeyID(newCookie) || got[1].KeyOp != command.KeyUse ||
		got[2].KeyID != kernel.KeyID(testCookie) || got[2].KeyOp != command.KeyRemove {
		t.Fatalf("n1 got %+v", got)
	}

	// One live node refusing fails the command, naming it and why.
	fs[1].set(command.Keys, command.Fail(command.CodeBadRequest, "kernel: key not installed"))
	code, out, _ = cli(ks[0], testCookie, 5*time.Second, "keys", "list")
	r = decodeOutput(t, out)
	if code != exitFail || r.OK || r.Error == nil || !strings.Contains(r.Error.Fields["n1"], "key not installed (BAD_REQUEST)") ||
		!strings.Contains(r.Error.Message, "1 of 2") || !strings.Contains(r.Error.Message, "n2 (dead), n3 (left)") {
		t.Fatalf("keys list with a refusing node: exit %d\n%s", code, out)
	}

	// A suspect or unknown node that cannot be reached fails the command
	// too: it may be running and would miss the change.
	fs[1].set(command.Keys, keysReply("n1"))
	for _, h := range []string{"suspect", "unknown"} {
		self := ks[0].Self()
		setNodes(fs[0], []map[string]any{
			{"id": self.ID, "host": self.Host, "port": self.Port, "health": "alive"},
			{"id": "gone", "host": "127.0.0.1", "port": closedPort(t), "health": h},
		})
		code, out, _ = cli(ks[0], testCookie, 2*time.Second, "keys", "use", newCookie, "--format", "text")
		if code != exitFail || !strings.Contains(out, "error: keys use: 1 of 2 nodes asked acknowledged (FAILED)\n  gone: ") {
			t.Fatalf("keys use with an unreachable %s node: exit %d\n%s", h, code, out)
		}
	}

	for _, args := range [][]string{{"keys"}, {"keys", "rotate"}, {"keys", "install"}, {"keys", "install", "short"}, {"keys", "list", "x"}} {
		if code, _, errs := cli(ks[0], testCookie, time.Second, args...); code != exitUsage || !strings.Contains(errs, "Usage: notp-cli [flags] keys") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

// The shell runs keys the same way: the suspect node is asked, the dead
// and left ones are listed as skipped, and an unreachable suspect node is
// named as a failure.
func TestShellKeys(t *testing.T) {
	ks, fs := keysCluster(t)
	script := "keys list\nkeys use\nkeys list --format text\nexit\n"
	code, out, errs := cliTo(ks[0].Self(), testCookie, 5*time.Second, strings.NewReader(script))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	wantInOrder(t, out, `"acked": 2`, `"n2 (dead)",`, `"n3 (left)"`, "Usage: keys list | install", "acked  2", "n2 (dead)")
	if n := len(keysCalls(fs[1])); n != 2 {
		t.Fatalf("the suspect n1 got %d keys requests, want 2", n)
	}

	self := ks[0].Self()
	setNodes(fs[0], []map[string]any{
		{"id": self.ID, "host": self.Host, "port": self.Port, "health": "alive"},
		{"id": "gone", "host": "127.0.0.1", "port": closedPort(t), "health": "suspect"},
	})
	code, out, errs = cliTo(self, testCookie, 2*time.Second, strings.NewReader("keys list --format text\nexit\n"))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	wantInOrder(t, out, "> error: keys list: 1 of 2 nodes asked acknowledged (FAILED)\n  gone: ")
}
