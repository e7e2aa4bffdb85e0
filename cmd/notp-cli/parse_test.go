package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

func node(id, host string, port int) *notp.Node { return &notp.Node{ID: id, Host: host, Port: port} }

// Each command's arguments become the payload the server expects; force
// defaults to false and a missing weight is sent as 0 so the server uses its
// rfactor.
func TestParseCommandGood(t *testing.T) {
	a, b := *node("a", "h1", 1), *node("b", "h2", 65535)
	cases := []struct {
		line string
		want command.Args
	}{
		{"inspect", command.Args{}},
		{"nodes", command.Args{}},
		{"ownership", command.Args{}},
		{"ping", command.Args{}},
		{"weights", command.Args{}},
		{"get a", command.Args{ID: "a"}},
		{"has a", command.Args{ID: "a"}},
		{"join ring1", command.Args{ID: "ring1"}},
		{"weight a", command.Args{ID: "a"}},
		{"meet a h1 1", command.Args{Node: &a}},
		{"leave", command.Args{}},
		{"leave -f", command.Args{Force: true}},
		{"leave --force", command.Args{Force: true}},
		{"insert a h1 1", command.Args{Node: &a}},
		{"insert a h1 1 -f", command.Args{Node: &a, Force: true}},
		{"insert -w 3 a h1 1", command.Args{Node: &a, Weight: 3}},
		{"insert a h1 1 --weight 7 --force", command.Args{Node: &a, Weight: 7, Force: true}},
		{"insert a h1 1 --weight=7", command.Args{Node: &a, Weight: 7}},
		{"insert a h1 1 -w=2", command.Args{Node: &a, Weight: 2}},
		{"minsert a h1 1", command.Args{Nodes: []notp.Node{a}}},
		{"minsert a h1 1 b h2 65535 -f -w 4", command.Args{Nodes: []notp.Node{a, b}, Force: true, Weight: 4}},
		{"minsert b h2 65535 a h1 1", command.Args{Nodes: []notp.Node{b, a}}},
		{"update a h1 1", command.Args{Node: &a}},
		{"update a h1 1 5", command.Args{Node: &a, Weight: 5}},
		{"update a h1 1 5 -f", command.Args{Node: &a, Weight: 5, Force: true}},
		{"remove a h1 1", command.Args{Node: &a}},
		{"remove a h1 1 --force", command.Args{Node: &a, Force: true}},
		{"mremove a h1 1 b h2 65535", command.Args{Nodes: []notp.Node{a, b}}},
		{"mremove a h1 1 -f", command.Args{Nodes: []notp.Node{a}, Force: true}},
		{"remove -- a h1 1", command.Args{Node: &a}},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			f := strings.Fields(c.line)
			got, err := cmdline.ParseCommand(f[0], f[1:])
			if err != nil {
				t.Fatalf("parseCommand: %v", err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseCommandBad(t *testing.T) {
	cases := []struct{ line, msg string }{
		{"inspect x", "takes no arguments"},
		{"ping -f", "unknown option"},
		{"nodes --weight 3", "unknown option"},
		{"get", "missing <id>"},
		{"get a b", "takes one <id>"},
		{"join", "missing <id>"},
		{"has -f", "unknown option"},
		{"meet a h1", "takes <id> <host> <port>"},
		{"meet a h1 port", `port "port" is not a number`},
		{"meet a h1 0", "out of range"},
		{"meet a h1 65536", "out of range"},
		{"meet a h1 -1", "out of range"},
		{"meet a h1 1 -f", "unknown option"},
		{"meet a@x h1 1", "invalid node"},
		{"leave now", "takes no arguments"},
		{"leave -w 3", "unknown option"},
		{"insert a h1", "takes <id> <host> <port>"},
		{"insert a h1 1 -w", "needs a value"},
		{"insert a h1 1 -w 0", "not a positive integer"},
		{"insert a h1 1 -w -2", "not a positive integer"},
		{"insert a h1 1 -w x", "not a positive integer"},
		{"insert a h1 1 -w 1.5", "not a positive integer"},
		{"insert a h1 1 --force=yes", "takes no value"},
		{"insert a h1 1 -x", "unknown option"},
		{"minsert", "at least one"},
		{"minsert -f", "at least one"},
		{"minsert a h1 1 b h2", `incomplete node triple "b h2"`},
		{"minsert a h1 1 b", `incomplete node triple "b"`},
		{"minsert a h1 x", "not a number"},
		{"update a h1 1 0", "not a positive integer"},
		{"update a h1 1 two", "not a positive integer"},
		{"update a h1 1 2 3", "takes <id> <host> <port> [weight]"},
		{"update a h1 1 -w 2", "unknown option"},
		{"remove a h1 1 2", "takes <id> <host> <port>"},
		{"mremove a h1", "incomplete node triple"},
		{"mremove", "at least one"},
		{"mremove a h1 1 -w 2", "unknown option"},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			f := strings.Fields(c.line)
			_, err := cmdline.ParseCommand(f[0], f[1:])
			var ue *cmdline.UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("error %q does not mention %q", err, c.msg)
			}
		})
	}
	if _, err := cmdline.ParseCommand("frobnicate", nil); !errors.Is(err, cmdline.ErrUnknownCommand) {
		t.Fatalf("unknown command: error %v", err)
	}
	if _, err := cmdline.ParseCommand("get", []string{" "}); err == nil {
		t.Fatal("a blank id was accepted")
	}
}

// Every protocol command has a spec (help and parsing cover it), in the
// order command.Names gives, then raft.
func TestSpecsCoverProtocol(t *testing.T) {
	if got := commandNames(); !reflect.DeepEqual(got, append(slices.Clone(command.Names), command.Raft)) {
		t.Fatalf("specs %v, command.Names %v", got, command.Names)
	}
	for i := range cmdline.Specs {
		if cmdline.Specs[i].Desc == "" || !strings.HasSuffix(cmdline.Specs[i].Summary(), ".") {
			t.Errorf("%s: bad description %q", cmdline.Specs[i].Name, cmdline.Specs[i].Desc)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := cmdline.ParseFlags([]string{"-I", "n1", "--hostname", "10.0.0.1", "--port", "8000", "-a", "k", "--timeout", "2s", "get", "x", "-f"})
	if err != nil {
		t.Fatal(err)
	}
	want := cmdline.Flags{Target: notp.Node{ID: "n1", Host: "10.0.0.1", Port: 8000}, Key: "k", Timeout: 2 * time.Second,
		Cmd: "get", Args: []string{"x", "-f"}}
	if !reflect.DeepEqual(o, want) {
		t.Fatalf("got %+v, want %+v", o, want)
	}
	o, err = cmdline.ParseFlags([]string{"--instance=n2", "-H=h", "-p=1", "--key=", "nodes"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Target != (notp.Node{ID: "n2", Host: "h", Port: 1}) || o.Key != "" || o.Timeout != cmdline.DefaultTimeout || o.Cmd != "nodes" {
		t.Fatalf("got %+v", o)
	}
	// Defaults: this host, port 7022, empty key, 5 s, shell mode.
	o, err = cmdline.ParseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.Target.ID == "" || o.Target.Host == "" || o.Target.Port != 7022 || o.Key != "" || o.Timeout != 5*time.Second || o.Cmd != "" {
		t.Fatalf("defaults %+v", o)
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-I", "x", "-h"}} {
		if o, err := cmdline.ParseFlags(args); err != nil || !o.Help {
			t.Fatalf("%v: help %v err %v", args, o.Help, err)
		}
	}
}

func TestParseFlagsBad(t *testing.T) {
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"-p", "x"}, "not a number"},
		{[]string{"--port", "0"}, "out of range"},
		{[]string{"-p", "65536"}, "out of range"},
		{[]string{"-p", "0x10"}, "not a number"},
		{[]string{"-p"}, "needs an argument"},
		{[]string{"--timeout", "0s"}, "must be positive"},
		{[]string{"--timeout", "-1s"}, "must be positive"},
		{[]string{"--timeout", "soon"}, "invalid value"},
		{[]string{"-I", ""}, "empty id"},
		{[]string{"-H", ""}, "empty host"},
		{[]string{"--frob"}, "not defined"},
	}
	for _, c := range cases {
		_, err := cmdline.ParseFlags(c.args)
		if !errors.Is(err, cmdline.ErrFlags) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.msg)
		}
	}
}

// Usage errors exit 2 with a message on stderr and nothing on stdout,
// before anything is sent: the port 1 on 127.0.0.1 is never dialled.
func TestRunUsageErrors(t *testing.T) {
	with := func(cmd ...string) []string {
		return append([]string{"-I", "n", "-H", "127.0.0.1", "-p", "1", "--timeout", "100ms"}, cmd...)
	}
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"-p", "abc", "ping"}, "not a number"},
		{[]string{"--bogus"}, "not defined"},
		{with("frobnicate"), `unknown command "frobnicate"`},
		{with("insert", "a", "h", "99999"), "Usage: notp-cli [flags] insert <id> <host> <port>"},
		{with("minsert", "a", "h", "1", "b"), "incomplete node triple"},
		{with("insert", "a", "h", "1", "-w", "0"), "positive integer"},
		{with("get"), "missing <id>"},
		{with("help", "frobnicate"), "unknown command"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		code := run(context.Background(), c.args, strings.NewReader(""), &out, &errb)
		if code != exitUsage || out.Len() != 0 || !strings.Contains(errb.String(), c.msg) {
			t.Errorf("%v: exit %d stdout %q stderr %q; want 2, nothing, %q", c.args, code, out.String(), errb.String(), c.msg)
		}
	}
}

func TestRunHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
	for _, want := range []string{"Usage: notp-cli [flags] [command [args...]]", "-I, --instance <id>", "--timeout <duration>",
		"minsert <id> <host> <port>... [-f] [-w <n>]", "-f, --force", "Exit status"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"help", "update"}, nil, &out, &errb); code != 0 {
		t.Fatalf("help update: exit %d", code)
	}
	if !strings.Contains(out.String(), "Usage: update <id> <host> <port> [weight] [-f|--force]") {
		t.Fatalf("help update:\n%s", out.String())
	}
}

func TestFormatOwnership(t *testing.T) {
	data := []byte(`[{"id":"a","share":0.5},{"id":"node-b","share":0.25},{"id":"c","share":0.25}]`)
	got, ok := formatOwnership(data, 0)
	if !ok {
		t.Fatal("not rendered")
	}
	want := "a       " + strings.Repeat("█", 40) + "   50.0%\n" +
		"node-b  " + strings.Repeat("█", 20) + strings.Repeat(" ", 20) + "   25.0%\n" +
		"c       " + strings.Repeat("█", 20) + strings.Repeat(" ", 20) + "   25.0%\n"
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// A terminal 80 columns wide: every line fits.
	got, _ = formatOwnership(data, 80)
	for _, l := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		if n := len([]rune(l)); n > 80 {
			t.Fatalf("line of %d columns: %q", n, l)
		}
	}
	for _, bad := range []string{`{"a":1}`, `[{"id":"","share":0.5}]`, `[{"id":"a","share":2}]`, `nope`} {
		if _, ok := formatOwnership([]byte(bad), 0); ok {
			t.Errorf("%s rendered as a chart", bad)
		}
	}
}

func TestComplete(t *testing.T) {
	cases := []struct {
		line    string
		pos     int
		want    string
		wantPos int
		cands   int
	}{
		{"inse", 4, "insert ", 7, 0},
		{"ins", 3, "", 0, 2}, // inspect, insert
		{"mi", 2, "minsert ", 8, 0},
		{"we", 2, "weight", 6, 0}, // weight, weights: common prefix
		{"weight", 6, "", 0, 2},   // still ambiguous: list
		{"help ex", 7, "help exit ", 10, 0},
		{"get a", 5, "", 0, 0}, // arguments are not completed
		{"ra", 2, "raft ", 5, 0},
		{"raft p", 6, "raft peers ", 11, 0}, // raft's operation is
		{"raft re", 7, "raft remove-peer ", 17, 0},
		{"raft peers x", 12, "", 0, 0},
		{"zz", 2, "", 0, 0},
	}
	for _, c := range cases {
		got, pos, cands := complete(c.line, c.pos, '\t')
		if got != c.want || pos != c.wantPos || len(cands) != c.cands {
			t.Errorf("complete(%q): %q %d %v", c.line, got, pos, cands)
		}
	}
	if got, _, _ := complete("ins", 3, 'x'); got != "" {
		t.Fatal("completed on a key other than TAB")
	}
}
