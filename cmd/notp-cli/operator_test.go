package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// membersData is a nodes reply of four nodes in three healths.
const membersData = `[{"id":"web-1","host":"10.0.0.1","port":7022,"health":"alive"},` +
	`{"id":"web-2","host":"10.0.0.2","port":7022,"health":"suspect"},` +
	`{"id":"db-1","host":"10.0.0.3","port":7022,"health":"dead"},` +
	`{"id":"web-10","host":"10.0.0.4","port":7022,"health":"alive"}]`

// nodeIDs returns the ids of a filtered nodes reply.
func nodeIDs(t *testing.T, r command.Reply) []string {
	t.Helper()
	var nodes []NodeHealthOut
	if err := json.Unmarshal(r.Data, &nodes); err != nil {
		t.Fatalf("data %s: %v", r.Data, err)
	}
	ids := []string{}
	for _, n := range nodes {
		if n.Host == "" || n.Port == 0 || n.Health == "" {
			t.Fatalf("filtering lost a field: %+v", n)
		}
		ids = append(ids, n.ID)
	}
	return ids
}

// NodeHealthOut is a node of the nodes command's data.
type NodeHealthOut struct {
	ID, Host, Health string
	Port             int
}

// members (and its older name nodes) sends the nodes command and keeps
// the nodes --status and --id select; one-shot mode prints JSON.
func TestOneShotMembersFilters(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Nodes, command.Reply{OK: true, Data: json.RawMessage(membersData)})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"members"}, "web-1 web-2 db-1 web-10"},
		{[]string{"nodes"}, "web-1 web-2 db-1 web-10"},
		{[]string{"members", "--status", "alive"}, "web-1 web-10"},
		{[]string{"members", "--status=dead"}, "db-1"},
		{[]string{"nodes", "--id", "^web-1"}, "web-1 web-10"},
		{[]string{"members", "--id", `^web-\d$`, "--status", "suspect"}, "web-2"},
		{[]string{"members", "--status", "left"}, ""},
	} {
		code, out, errs := cli(k, testCookie, 5*time.Second, c.args...)
		r := decodeOutput(t, out)
		if got := strings.Join(nodeIDs(t, r), " "); code != 0 || errs != "" || got != c.want {
			t.Errorf("%v: exit %d stderr %q ids %q, want %q", c.args, code, errs, got, c.want)
		}
	}
	for _, c := range f.got() {
		if c.event != command.Nodes {
			t.Fatalf("sent %q, want only nodes", c.event)
		}
	}
}

// lookup sends the key and the list length; info sends nothing else.
func TestOneShotLookupInfo(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Lookup, command.Reply{OK: true, Data: json.RawMessage(
		`{"key":"user:42","owner":{"id":"b","host":"h","port":2},"preference":[{"id":"b","host":"h","port":2},{"id":"a","host":"h","port":1}]}`)})
	f.set(command.Info, command.Reply{OK: true, Data: json.RawMessage(
		`{"node":{"id":"node1","host":"127.0.0.1","port":7022},"version":"(devel)","uptime":"1m30s","ring":"r","nodes":3,"tokens":384,"health":{"alive":3},"kernel":{"FramesIn":12},"gossip":{"Merges":4},"memberlist":{"PacketsIn":9,"StreamsOut":2}}`)})
	code, out, _ := cli(k, testCookie, 5*time.Second, "lookup", "user:42")
	if r := decodeOutput(t, out); code != 0 || !strings.Contains(string(r.Data), `"owner": {`) {
		t.Fatalf("lookup: exit %d\n%s", code, out)
	}
	code, out, _ = cli(k, testCookie, 5*time.Second, "lookup", "--", "-dash", "5")
	if code != 0 {
		t.Fatalf("lookup -- -dash 5: exit %d\n%s", code, out)
	}
	code, out, _ = cli(k, testCookie, 5*time.Second, "info")
	var info command.InfoData
	if r := decodeOutput(t, out); code != 0 || json.Unmarshal(r.Data, &info) != nil || info.Tokens != 384 ||
		!strings.Contains(string(info.Memberlist), `"PacketsIn": 9`) {
		t.Fatalf("info: exit %d\n%s", code, out)
	}
	// --format text shows the memberlist counters below the kernel's and gossip's.
	code, out, _ = cli(k, testCookie, 5*time.Second, "info", "--format", "text")
	if want := "kernel:\n  FramesIn  12\ngossip:\n  Merges  4\nmemberlist:\n  PacketsIn   9\n  StreamsOut  2\n"; code != 0 || !strings.HasSuffix(out, want) {
		t.Fatalf("info --format text: exit %d\n%s\nwant it to end with\n%s", code, out, want)
	}
	got := f.got()
	if len(got) != 4 || got[0].args.Key != "user:42" || got[0].args.N != 0 ||
		got[1].args.Key != "-dash" || got[1].args.N != 5 || got[2].event != command.Info || got[3].event != command.Info {
		t.Fatalf("server got %+v", got)
	}
	// A failed lookup exits 1.
	f.set(command.Lookup, command.Fail(command.CodeBadRequest, "Missing required 'key' parameter."))
	if code, out, _ := cli(k, testCookie, 5*time.Second, "lookup", "k"); code != 1 || decodeOutput(t, out).OK {
		t.Fatalf("failed lookup: exit %d\n%s", code, out)
	}
}

// --format text prints readable tables and key/value lines, before or after
// the command; errors keep exit code 1.
func TestOneShotFormatText(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Nodes, command.Reply{OK: true, Data: json.RawMessage(membersData)})
	f.set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	f.set(command.Info, command.Reply{OK: true, Data: json.RawMessage(
		`{"version":"(devel)","nodes":3,"health":{"alive":2,"dead":1},"preference":[{"id":"a","port":1}],"empty":[]}`)})
	f.set(command.Ownership, command.Reply{OK: true, Data: json.RawMessage(`[{"id":"a","share":0.5},{"id":"b","share":0.5}]`)})
	f.set(command.Get, command.Reply{Error: &command.Error{Code: command.CodeBadRequest, Message: "Invalid node parameter types.",
		Fields: map[string]string{"node.port": "must be a number", "node.id": "required"}}})
	f.set(command.Leave, command.Reply{OK: true})
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--format", "text", "members", "--status", "alive"},
			0, "ID      HOST      PORT  HEALTH\nweb-1   10.0.0.1  7022  alive\nweb-10  10.0.0.4  7022  alive\n"},
		{[]string{"ping", "--format", "text"}, 0, "pong\n"},
		{[]string{"info", "--format=text"}, 0,
			"version  (devel)\nnodes    3\nhealth:\n  alive  2\n  dead   1\npreference:\n  ID  PORT\n  a   1\nempty  (none)\n"},
		{[]string{"--format", "text", "ownership"}, 0, "a  " + strings.Repeat("█", 40) + "   50.0%\nb  " + strings.Repeat("█", 40) + "   50.0%\n"},
		{[]string{"--format", "text", "get", "x"}, 1,
			"error: Invalid node parameter types. (BAD_REQUEST)\n  node.id: required\n  node.port: must be a number\n"},
		{[]string{"--format", "text", "leave"}, 0, "ok\n"},
		// The command's --format wins over the global one.
		{[]string{"--format", "text", "ping", "--format", "json"}, 0, "{\n  \"ok\": true,\n  \"data\": \"pong\"\n}\n"},
	}
	for _, c := range cases {
		code, out, errs := cli(k, testCookie, 5*time.Second, c.args...)
		if code != c.code || errs != "" || out != c.want {
			t.Errorf("%v: exit %d stderr %q output\n%q\nwant %d\n%q", c.args, code, errs, out, c.code, c.want)
		}
	}
}

// NOTP_INSTANCE, NOTP_HOST and NOTP_PORT give the target when the flags do
// not; flags win; a malformed value is a usage error.
func TestEnvDefaults(t *testing.T) {
	k := startKernel(t, "envnode", testCookie)
	startFake(t, k).set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	self := k.Self()
	t.Setenv(cmdline.EnvInstance, self.ID)
	t.Setenv(cmdline.EnvHost, self.Host)
	t.Setenv(cmdline.EnvPort, fmt.Sprint(self.Port))
	t.Setenv(cmdline.EnvCookie, testCookie)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--timeout", "5s", "ping"}, nil, &out, &errb); code != 0 {
		t.Fatalf("ping via the environment: exit %d\n%s%s", code, out.String(), errb.String())
	}
	o, err := cmdline.ParseFlags([]string{"-I", "flagid", "-p", "9"})
	if err != nil || o.Target.ID != "flagid" || o.Target.Port != 9 || o.Target.Host != self.Host {
		t.Fatalf("flags over the environment: %+v, %v", o.Target, err)
	}
	for name, val := range map[string]string{cmdline.EnvPort: "0", cmdline.EnvHost: strings.Repeat("h", cmdline.MaxEnvLen+1)} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(name, val)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"ping"}, nil, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "$"+name) {
				t.Fatalf("$%s=%.20q: exit %d stderr %q", name, val, code, errb.String())
			}
		})
	}
}

// Bad arguments of the new commands are usage errors: exit 2, nothing sent.
func TestOperatorUsageErrors(t *testing.T) {
	with := func(cmd ...string) []string {
		return append([]string{"-I", "n", "-H", "127.0.0.1", "-p", "1", "--timeout", "100ms"}, cmd...)
	}
	cases := []struct {
		args []string
		msg  string
	}{
		{with("members", "--status", "sleepy"), `--status "sleepy": want one of alive, suspect, dead`},
		{with("members", "--id", "web-("), "--id: error parsing regexp"},
		{with("members", "--id", strings.Repeat("a", cmdline.MaxIDPattern+1)), "at most 256"},
		{with("members", "--id"), "needs a value"},
		{with("ping", "--status", "alive"), `unknown option "--status"`},
		{with("lookup"), "missing <key>"},
		{with("lookup", "k", "0"), "1-64"},
		{with("lookup", "k", "65"), "1-64"},
		{with("lookup", "k", "2", "3"), "takes <key> [n]"},
		{with("lookup", strings.Repeat("k", command.MaxKeyLen+1)), "at most 1024"},
		{with("info", "x"), "takes no arguments"},
		{with("--format", "yaml", "info"), "want text or json"},
		{with("info", "--format", "xml"), "want text or json"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want 2, nothing, %q", c.args, code, out.String(), errb.String(), c.msg)
		}
	}
}

// The shell runs the new commands: members with filters, lookup, info and
// --format text, and reports their usage errors without sending anything.
func TestShellOperatorCommands(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	f.set(command.Nodes, command.Reply{OK: true, Data: json.RawMessage(membersData)})
	f.set(command.Lookup, command.Reply{OK: true, Data: json.RawMessage(`{"key":"k","owner":{"id":"a","host":"h","port":1},"preference":[{"id":"a","host":"h","port":1}]}`)})
	f.set(command.Info, command.Reply{OK: true, Data: json.RawMessage(`{"version":"(devel)","tokens":384,"memberlist":{"PacketsIn":9,"RejectedStreams":0}}`)})
	script := strings.Join([]string{
		"members --status dead", "members --id web --format text", "lookup k 1", "info --format text",
		"members --id (", "lookup", "exit",
	}, "\n") + "\n"
	code, out, errs := cliTo(k.Self(), testCookie, 5*time.Second, strings.NewReader(script))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	wants := []string{
		"\"id\": \"db-1\"",
		"> ID      HOST      PORT  HEALTH\nweb-1   10.0.0.1  7022  alive\nweb-2   10.0.0.2  7022  suspect\nweb-10  10.0.0.4  7022  alive\n",
		"\"preference\": [",
		"> version  (devel)\ntokens   384\nmemberlist:\n  PacketsIn        9\n  RejectedStreams  0\n",
		"> nodes: --id: error parsing regexp",
		"> lookup: missing <key>\nUsage: lookup <key> [n]\n",
	}
	wantInOrder(t, out, wants...)
	if first := out[:strings.Index(out, "> ID")]; strings.Contains(first, "web-") {
		t.Fatalf("--status dead kept other nodes:\n%s", out)
	}
	var events []string
	for _, c := range f.got() {
		events = append(events, c.event)
	}
	if want := "ping nodes nodes lookup info"; strings.Join(events, " ") != want {
		t.Fatalf("server got %v, want %s", events, want)
	}
	if got := f.got()[3].args; got.Key != "k" || got.N != 1 {
		t.Fatalf("lookup args %+v", got)
	}
}
