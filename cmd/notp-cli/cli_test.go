package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/clustertest"
	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/testutil"
	"github.com/notp-go/notp/kernel"
)

// testCookie is the test nodes' cookie: long enough for kernel.New.
const testCookie = "notp-cli test cookie 0123456789"

// startKernel starts a node on 127.0.0.1:0 with cookie (empty = insecure).
func startKernel(t *testing.T, id, cookie string) *kernel.Kernel {
	t.Helper()
	return clustertest.StartKernel(t, kernel.Config{Node: notp.Node{ID: id, Host: "127.0.0.1"}, Cookie: cookie, Insecure: cookie == ""})
}

// wantInOrder fails t unless the shell output out holds each of wants,
// in that order.
func wantInOrder(t *testing.T, out string, wants ...string) {
	t.Helper()
	last := 0
	for _, w := range wants {
		i := strings.Index(out[last:], w)
		if i < 0 {
			t.Fatalf("shell output lacks (in order) %q:\n%s", w, out)
		}
		last += i + len(w)
	}
}

// call is one request the fake command server received.
type call struct {
	event string
	args  command.Args
}

// fakeServer is a command server with canned replies that records the
// requests it gets. Events in silent are never answered; events in raw get
// those bytes as the reply instead of an encoded command.Reply.
type fakeServer struct {
	mu      sync.Mutex
	calls   []call
	replies map[string]command.Reply
	silent  map[string]bool
	raw     map[string][]byte
	arrived chan struct{} // gets a value per request, if not full
}

func startFake(t *testing.T, k *kernel.Kernel, events ...string) *fakeServer {
	t.Helper()
	f := &fakeServer{replies: map[string]command.Reply{}, silent: map[string]bool{}, raw: map[string][]byte{},
		arrived: make(chan struct{}, 100)}
	s, err := genserver.New(k, genserver.Config{Name: command.ServerName})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		events = command.Names
	}
	for _, ev := range events {
		s.Handle(ev, f.handle)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return f
}

func (f *fakeServer) set(event string, r command.Reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies[event] = r
}

func (f *fakeServer) handle(_ context.Context, r genserver.Request) ([]byte, error) {
	a, err := command.DecodeArgs(r.Data)
	if err != nil {
		return command.EncodeReply(command.Fail(command.CodeBadRequest, err.Error()))
	}
	f.mu.Lock()
	f.calls = append(f.calls, call{r.Event, a})
	rep, ok := f.replies[r.Event]
	silent, raw := f.silent[r.Event], f.raw[r.Event]
	f.mu.Unlock()
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	switch {
	case silent:
		return nil, genserver.NoReply
	case raw != nil:
		return raw, nil
	case !ok:
		rep = command.Reply{OK: true}
	}
	return command.EncodeReply(rep)
}

func (f *fakeServer) got() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// cli runs notp-cli in-process against the node k with key and timeout.
func cli(k *kernel.Kernel, key string, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	self := k.Self()
	return cliTo(self, key, timeout, nil, args...)
}

func cliTo(target notp.Node, key string, timeout time.Duration, stdin io.Reader, args ...string) (int, string, string) {
	flags := []string{"-I", target.ID, "-H", target.Host, "-p", strconv.Itoa(target.Port), "-a", key, "--timeout", timeout.String()}
	var out, errb bytes.Buffer
	code := run(context.Background(), append(flags, args...), stdin, &out, &errb)
	return code, out.String(), errb.String()
}

// decodeOutput checks that out is one 2-space-indented JSON reply.
func decodeOutput(t *testing.T, out string) command.Reply {
	t.Helper()
	var r command.Reply
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", out)
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, []byte(out), "", "  "); err != nil || ind.String() != out {
		t.Fatalf("stdout is not 2-space-indented JSON:\n%s", out)
	}
	return r
}

func TestOneShotOutput(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Inspect, command.Reply{OK: true, Data: json.RawMessage(`{"z":1,"a":[1,2],"html":"<&>"}`)})
	f.set(command.Get, command.Fail(command.CodeFailed, "'x' is not defined in this ring."))
	f.set(command.Nodes, command.Reply{OK: true, Data: json.RawMessage(`[{"id":"node1","host":"127.0.0.1","port":1,"health":"alive"}]`)})

	code, out, errs := cli(k, testCookie, 5*time.Second, "inspect")
	if code != 0 || errs != "" {
		t.Fatalf("inspect: exit %d stderr %q", code, errs)
	}
	// The server's key order is kept, nothing is HTML-escaped.
	want := "{\n  \"ok\": true,\n  \"data\": {\n    \"z\": 1,\n    \"a\": [\n      1,\n      2\n    ],\n    \"html\": \"<&>\"\n  }\n}\n"
	if out != want {
		t.Fatalf("inspect output\n%s\nwant\n%s", out, want)
	}

	code, out, _ = cli(k, testCookie, 5*time.Second, "get", "x")
	r := decodeOutput(t, out)
	if code != 1 || r.OK || r.Error == nil || r.Error.Message != "'x' is not defined in this ring." || r.Error.Code != command.CodeFailed {
		t.Fatalf("get x: exit %d reply %+v", code, r)
	}
	if !strings.Contains(out, `"error": {`) || strings.Contains(out, `"data"`) {
		t.Fatalf("get x output:\n%s", out)
	}

	code, out, _ = cli(k, testCookie, 5*time.Second, "nodes")
	r = decodeOutput(t, out)
	if code != 0 || !r.OK || !strings.Contains(string(r.Data), `"health": "alive"`) {
		t.Fatalf("nodes: exit %d reply %+v", code, r)
	}

	// A reply without data prints {"ok": true}.
	code, out, _ = cli(k, testCookie, 5*time.Second, "join", "ring")
	if code != 0 || out != "{\n  \"ok\": true\n}\n" {
		t.Fatalf("join: exit %d output %q", code, out)
	}
}

// The payloads the server gets carry the weights, force flags and node
// triples in the order given.
func TestOneShotArgsArrive(t *testing.T) {
	k := startKernel(t, "node1", "")
	f := startFake(t, k)
	lines := [][]string{
		{"leave"},
		{"leave", "--force"},
		{"insert", "a", "10.0.0.1", "7022"},
		{"insert", "a", "10.0.0.1", "7022", "-w", "3", "-f"},
		{"minsert", "b", "h2", "2", "a", "h1", "1", "c", "h3", "3", "--weight", "5"},
		{"update", "a", "h1", "1", "9", "-f"},
		{"remove", "a", "h1", "1"},
		{"mremove", "c", "h3", "3", "a", "h1", "1", "-f"},
		{"meet", "z", "h9", "65535"},
		{"weight", "a"},
	}
	for _, l := range lines {
		if code, out, errs := cli(k, "", 5*time.Second, l...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", l, code, out, errs)
		}
	}
	a, b, c := notp.Node{ID: "a", Host: "h1", Port: 1}, notp.Node{ID: "b", Host: "h2", Port: 2}, notp.Node{ID: "c", Host: "h3", Port: 3}
	a0 := notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}
	want := []call{
		{"leave", command.Args{}},
		{"leave", command.Args{Force: true}},
		{"insert", command.Args{Node: &a0}},
		{"insert", command.Args{Node: &a0, Weight: 3, Force: true}},
		{"minsert", command.Args{Nodes: []notp.Node{b, a, c}, Weight: 5}},
		{"update", command.Args{Node: &a, Weight: 9, Force: true}},
		{"remove", command.Args{Node: &a}},
		{"mremove", command.Args{Nodes: []notp.Node{c, a}, Force: true}},
		{"meet", command.Args{Node: &notp.Node{ID: "z", Host: "h9", Port: 65535}}},
		{"weight", command.Args{ID: "a"}},
	}
	if got := f.got(); !reflect.DeepEqual(got, want) {
		t.Fatalf("server got\n%+v\nwant\n%+v", got, want)
	}
}

// A node without the command server answers UNKNOWN_NAME; one whose
// server lacks the event answers genserver's UNKNOWN_EVENT; a malformed
// reply is reported, not printed as if it were one.
func TestOneShotRemoteErrors(t *testing.T) {
	bare := startKernel(t, "bare", testCookie)
	code, out, _ := cli(bare, testCookie, 5*time.Second, "ping")
	r := decodeOutput(t, out)
	if code != 1 || r.OK || r.Error.Code != kernel.CodeUnknownName || !strings.Contains(r.Error.Message, "no command server") {
		t.Fatalf("no command server: exit %d reply %+v", code, r.Error)
	}

	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k, command.Ping, command.Inspect)
	code, out, _ = cli(k, testCookie, 5*time.Second, "ownership")
	if r := decodeOutput(t, out); code != 1 || r.Error.Code != genserver.CodeUnknownEvent {
		t.Fatalf("unknown event: exit %d reply %+v", code, r.Error)
	}
	f.mu.Lock()
	f.raw[command.Ping] = []byte{0xc1}
	bad, _ := command.EncodeReply(command.Reply{OK: true, Data: json.RawMessage("{")})
	f.raw[command.Inspect] = bad
	f.mu.Unlock()
	for _, ev := range []string{command.Ping, command.Inspect} {
		code, out, _ = cli(k, testCookie, 5*time.Second, ev)
		if r := decodeOutput(t, out); code != 1 || r.Error.Code != codeInvalidReply {
			t.Fatalf("%s: malformed reply: exit %d reply %+v", ev, code, r.Error)
		}
	}
}

// A wrong key (or a key against a node without one, or none against a
// node with one) fails at once with an ok:false reply.
func TestOneShotWrongKey(t *testing.T) {
	secured := startKernel(t, "secured", testCookie)
	startFake(t, secured)
	open := startKernel(t, "open", "")
	startFake(t, open)
	cases := []struct {
		k   *kernel.Kernel
		key string
	}{{secured, "a wrong cookie, 16+ bytes"}, {secured, ""}, {open, "some cookie, 16+ bytes"}}
	for _, c := range cases {
		// The timeout is long: a HANDSHAKE_FAILED code proves the CLI did
		// not wait for it.
		code, out, _ := cli(c.k, c.key, time.Minute, "ping")
		r := decodeOutput(t, out)
		if code != 1 || r.OK || r.Error.Code != codeHandshake || !strings.Contains(r.Error.Message, "--key") {
			t.Fatalf("node %s, key %q: exit %d reply %+v", c.k.Self().ID, c.key, code, r.Error)
		}
	}
	// A wrong instance id is refused the same way.
	target := secured.Self()
	target.ID = "someone-else"
	code, out, _ := cliTo(target, testCookie, time.Minute, nil, "ping")
	if r := decodeOutput(t, out); code != 1 || r.Error.Code != codeHandshake {
		t.Fatalf("wrong id: exit %d reply %+v", code, r.Error)
	}
}

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func TestOneShotUnreachable(t *testing.T) {
	target := notp.Node{ID: "gone", Host: "127.0.0.1", Port: freePort(t)}
	// UNREACHABLE rather than TIMEOUT proves the CLI gave up at the
	// refused connection, not after the minute.
	code, out, errs := cliTo(target, "", time.Minute, nil, "ping")
	r := decodeOutput(t, out)
	if code != 1 || r.OK || r.Error.Code != codeUnreachable || !strings.Contains(r.Error.Message, target.Addr()) {
		t.Fatalf("exit %d reply %+v stderr %q", code, r.Error, errs)
	}
}

func TestOneShotTimeout(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.mu.Lock()
	f.silent[command.Ping] = true
	f.mu.Unlock()
	code, out, _ := cli(k, testCookie, 200*time.Millisecond, "ping")
	r := decodeOutput(t, out)
	if code != 1 || r.OK || r.Error.Code != codeTimeout || !strings.Contains(r.Error.Message, "200ms") {
		t.Fatalf("exit %d reply %+v", code, r.Error)
	}
	if len(f.got()) != 1 {
		t.Fatalf("server got %d requests, want 1", len(f.got()))
	}

	// A listener that accepts but never speaks: the connection itself
	// times out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after ln.Close, which ends the accept loop
	defer ln.Close()
	wg.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	target := notp.Node{ID: "mute", Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
	code, out, _ = cliTo(target, testCookie, 200*time.Millisecond, nil, "ping")
	if r := decodeOutput(t, out); code != 1 || r.Error.Code != codeTimeout {
		t.Fatalf("mute listener: exit %d reply %+v", code, r.Error)
	}
}

// The connection dropping while a reply is awaited fails the request at
// once with DISCONNECTED, not after the timeout.
func TestOneShotDisconnected(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.mu.Lock()
	f.silent[command.Inspect] = true
	f.mu.Unlock()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out, _ := cli(k, testCookie, time.Minute, "inspect")
		done <- result{code, out}
	}()
	<-f.arrived
	start := time.Now()
	k.Close()
	res := <-done
	if r := decodeOutput(t, res.out); res.code != 1 || r.Error.Code != codeDisconnected {
		t.Fatalf("exit %d reply %+v", res.code, r.Error)
	}
	t.Logf("DISCONNECTED %v after the node closed", time.Since(start))
}

func TestShellScript(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	f.set(command.Ownership, command.Reply{OK: true, Data: json.RawMessage(`[{"id":"node1","share":0.75},{"id":"node2","share":0.25}]`)})
	f.set(command.Has, command.Fail(command.CodeBadRequest, "Missing required 'id' parameter."))
	script := strings.Join([]string{
		"help", "", "ping", "frobnicate x", "help insert", "help nope", "insert a h 1 -w 0",
		"ownership", "has x", "get a", "exit", "ping",
	}, "\n") + "\n"
	code, out, errs := cliTo(k.Self(), testCookie, 5*time.Second, strings.NewReader(script))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	wants := []string{
		fmt.Sprintf("Connecting to node1 at %s\nConnected to node1\n", k.Self().Addr()),
		"> Commands:\n  inspect ",
		"  minsert <id> <host> <port>... [-f] [-w <n>]  Inserts multiple nodes into this node's cluster.\n",
		"  help [command] ",
		"  exit ",
		"> {\n  \"ok\": true,\n  \"data\": \"pong\"\n}\n",
		"> Unknown command 'frobnicate'. Type 'help' to list the commands.\n",
		"> Usage: insert <id> <host> <port> [-f|--force] [-w|--weight <n>]\n\nInserts a node into this node's cluster.",
		"-f, --force       " + cmdline.ForceHelp,
		"> Unknown command 'nope'.",
		"> insert: weight \"0\" is not a positive integer\nUsage: insert <id> <host> <port> [-f|--force] [-w|--weight <n>]\n",
		"> node1  " + strings.Repeat("█", 40) + "   75.0%\nnode2  " + strings.Repeat("█", 13) + strings.Repeat(" ", 27) + "   25.0%\n",
		"\"code\": \"BAD_REQUEST\"",
	}
	wantInOrder(t, out, wants...)
	if !strings.HasSuffix(out, "> ") {
		t.Fatalf("output does not end at the prompt after exit:\n%s", out)
	}
	// The connect ping, ping, ownership, has, get; nothing after exit.
	var events []string
	for _, c := range f.got() {
		events = append(events, c.event)
	}
	if want := []string{"ping", "ping", "ownership", "has", "get"}; !reflect.DeepEqual(events, want) {
		t.Fatalf("server got %v, want %v", events, want)
	}
}

func TestShellEOF(t *testing.T) {
	k := startKernel(t, "node1", "")
	startFake(t, k)
	code, out, _ := cliTo(k.Self(), "", 5*time.Second, strings.NewReader("ping"))
	if code != 0 || strings.Count(out, `"ok": true`) != 1 {
		t.Fatalf("exit %d output:\n%s", code, out)
	}
}

func TestShellCannotConnect(t *testing.T) {
	target := notp.Node{ID: "gone", Host: "127.0.0.1", Port: freePort(t)}
	code, out, errs := cliTo(target, "", time.Minute, strings.NewReader("ping\n"))
	if code != 1 || out != "Connecting to gone at "+target.Addr()+"\n" || !strings.Contains(errs, "Cannot connect to gone") ||
		!strings.Contains(errs, codeUnreachable) {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errs)
	}
	// A node without a command server cannot be shelled into either.
	bare := startKernel(t, "bare", "")
	code, _, errs = cliTo(bare.Self(), "", 5*time.Second, strings.NewReader("ping\n"))
	if code != 1 || !strings.Contains(errs, kernel.CodeUnknownName) {
		t.Fatalf("bare node: exit %d stderr %q", code, errs)
	}
}

// The shell reports a lost connection once, fails requests quickly while
// the node is gone, and ends cleanly.
func TestShellDisconnect(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	startFake(t, k)
	target := k.Self()
	inR, inW := io.Pipe()
	var out testutil.SyncBuffer
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		flags := []string{"-I", target.ID, "-H", target.Host, "-p", strconv.Itoa(target.Port), "-a", testCookie, "--timeout", "1m"}
		done <- run(context.Background(), flags, inR, &out, &errb)
	}()
	testutil.WaitFor(t, "the shell to connect", func() bool { return strings.Contains(out.String(), "Connected to node1\n> ") })
	k.Close()
	testutil.WaitFor(t, "the disconnect notice", func() bool { return strings.Contains(out.String(), "Disconnected from node1\n") })
	io.WriteString(inW, "ping\n")
	// The node is gone: redialling is refused, so the request fails
	// without waiting for the minute.
	testutil.WaitFor(t, "the failed request", func() bool { return strings.Contains(out.String(), `"code": "UNREACHABLE"`) })
	io.WriteString(inW, "ping\n")
	testutil.WaitFor(t, "the second failed request", func() bool { return strings.Count(out.String(), `"ok": false`) == 2 })
	inW.Close()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d stderr %q", code, errb.String())
	}
	if n := strings.Count(out.String(), "Disconnected from node1"); n != 1 {
		t.Fatalf("disconnect notice printed %d times:\n%s", n, out.String())
	}
}

// The line editor: TAB completes a command name, several candidates are
// listed, Ctrl-D on an empty line and Ctrl-C end the shell.
func TestShellTerminal(t *testing.T) {
	k := startKernel(t, "node1", "")
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true, Data: json.RawMessage(`"pong"`)})
	target := k.Self()
	c, err := newClient(context.Background(), cmdline.Flags{Target: target, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, in := range []string{"pin\t\r\x04", "pin\t\r\x03"} {
		var out testutil.SyncBuffer
		sh := &shell{c: c, id: target.ID}
		tm := sh.attachTerminal(struct {
			io.Reader
			io.Writer
		}{strings.NewReader(in), &out}, 80, 24)
		if code := sh.loop(context.Background(), tm.ReadLine); code != 0 {
			t.Fatalf("%q: exit %d", in, code)
		}
		if !strings.Contains(out.String(), "ping \r\n{\r\n  \"ok\": true,\r\n  \"data\": \"pong\"\r\n}\r\n") {
			t.Fatalf("%q: output %q", in, out.String())
		}
	}
	if n := len(f.got()); n != 2 {
		t.Fatalf("server got %d pings, want 2", n)
	}
	var out testutil.SyncBuffer
	sh := &shell{c: c, id: target.ID}
	tm := sh.attachTerminal(struct {
		io.Reader
		io.Writer
	}{strings.NewReader("i\tx\x7f\t\x03"), &out}, 0, 0) // "i" TAB extends to "in"; TAB again lists
	sh.loop(context.Background(), tm.ReadLine)
	if !strings.Contains(out.String(), "inspect  info  insert\r\n") {
		t.Fatalf("candidates not listed: %q", out.String())
	}
}

// A signal (ctx cancelled) ends a request at once with CANCELED, and ends
// the shell while it waits for input.
func TestCanceled(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.mu.Lock()
	f.silent[command.Weights] = true
	f.mu.Unlock()
	target := k.Self()
	flags := []string{"-I", target.ID, "-H", target.Host, "-p", strconv.Itoa(target.Port), "-a", testCookie, "--timeout", "1m"}

	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(flags, "weights"), nil, &out, io.Discard) }()
	<-f.arrived
	cancel()
	if code := <-done; code != 1 {
		t.Fatalf("one-shot: exit %d", code)
	}
	if r := decodeOutput(t, out.String()); r.Error == nil || r.Error.Code != codeCanceled {
		t.Fatalf("one-shot: reply %+v", r.Error)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	inR, inW := io.Pipe()
	defer inW.Close() // ends the shell's blocked reader goroutine
	var sout testutil.SyncBuffer
	go func() { done <- run(ctx, flags, inR, &sout, io.Discard) }()
	testutil.WaitFor(t, "the prompt", func() bool { return strings.HasSuffix(sout.String(), "Connected to node1\n> ") })
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("shell: exit %d", code)
	}
}
