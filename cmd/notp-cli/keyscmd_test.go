package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// keysCluster starts three fake nodes; the first lists them all, the
// third as dead. Each answers keys with its own node name.
func keysCluster(t *testing.T) ([]*kernel.Kernel, []*fakeServer) {
	t.Helper()
	var ks []*kernel.Kernel
	var fs []*fakeServer
	for i := range 3 {
		k := startKernel(t, fmt.Sprintf("n%d", i), testCookie)
		f := startFake(t, k)
		d, _ := json.Marshal(command.KeysData{Node: k.Self().ID, Keys: []command.KeyInfo{{ID: kernel.KeyID(testCookie), Primary: true}}})
		f.set(command.Keys, command.Reply{OK: true, Data: d})
		ks, fs = append(ks, k), append(fs, f)
	}
	var nodes []map[string]any
	for i, k := range ks {
		h := "alive"
		if i == 2 {
			h = "dead"
		}
		nodes = append(nodes, map[string]any{"id": k.Self().ID, "host": k.Self().Host, "port": k.Self().Port, "health": h})
	}
	d, _ := json.Marshal(nodes)
	fs[0].set(command.Nodes, command.Reply{OK: true, Data: d})
	return ks, fs
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

// keys goes to every live node (the dead one is skipped and named), with
// a sealed cookie for install and a fingerprint for use and remove, and
// exits 0 only when every live node acknowledged.
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
		len(res.Skipped) != 1 || !strings.HasPrefix(res.Skipped[0], "n2 (dead)") {
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

	// One live node refusing fails the command, naming it.
	fs[1].set(command.Keys, command.Fail(command.CodeBadRequest, "kernel: key not installed"))
	code, out, _ = cli(ks[0], testCookie, 5*time.Second, "keys", "list")
	r = decodeOutput(t, out)
	if code != exitFail || r.OK || r.Error == nil || r.Error.Fields["n1"] == "" || !strings.Contains(r.Error.Message, "1 of 2") {
		t.Fatalf("keys list with a refusing node: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{{"keys"}, {"keys", "rotate"}, {"keys", "install"}, {"keys", "install", "short"}, {"keys", "list", "x"}} {
		if code, _, errs := cli(ks[0], testCookie, time.Second, args...); code != exitUsage || !strings.Contains(errs, "Usage: notp-cli [flags] keys") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}

// The shell runs keys the same way.
func TestShellKeys(t *testing.T) {
	ks, fs := keysCluster(t)
	script := "keys list\nkeys use\nkeys list --format text\nexit\n"
	code, out, errs := cliTo(ks[0].Self(), testCookie, 5*time.Second, strings.NewReader(script))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	for _, w := range []string{`"acked": 2`, "Usage: keys list | install", "acked  2"} {
		if !strings.Contains(out, w) {
			t.Fatalf("shell output lacks %q:\n%s", w, out)
		}
	}
	if n := len(keysCalls(fs[1])); n != 2 {
		t.Fatalf("n1 got %d keys requests, want 2", n)
	}
}
