package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

const wantClient = `a -> b: ping ok
call put greeting=hello -> previous ""
call put greeting="hello, world" -> previous "hello"
call get greeting -> "hello, world"
cast incr hits x1000, then call count hits -> 1000
call get missing -> NOT_FOUND: true (genserver: call "kv" on b: remote b: NOT_FOUND: no key "missing")
call delete (no such event) -> UNKNOWN_EVENT: true
kernel call to an unregistered name -> UNKNOWN_NAME: true
stats a: frames out 1008, frames in 8, rejected 0, casts to unknown names 0, late replies 0
`

const wantServerStats = "stats b: frames out 8, frames in 1008, rejected 0, casts to unknown names 0, late replies 0\n"

// The one-process mode prints the same thing on every run.
func TestOneProcess(t *testing.T) {
	for range 2 {
		var out bytes.Buffer
		if err := run(context.Background(), nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != wantClient+wantServerStats {
			t.Fatalf("output:\n%s\nwant:\n%s", got, wantClient+wantServerStats)
		}
	}
}

// The two-process mode, with both roles in this test: a server on a free
// port and a client against it, then a client with the wrong cookie.
func TestServerAndClient(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	srvDone := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"-role", "server", "-addr", "127.0.0.1:0", "-cookie", "actors test cookie 0123456789"}, pw, io.Discard)
		pw.CloseWithError(err)
		srvDone <- err
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("server printed nothing: %v", lines.Err())
	}
	first := lines.Text() // node b serving "kv" on 127.0.0.1:PORT; Ctrl-C stops
	addr := strings.TrimSuffix(strings.Fields(first)[5], ";")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-role", "client", "-addr", addr, "-cookie", "actors test cookie 0123456789"}, &out, io.Discard); err != nil {
		t.Fatalf("client: %v", err)
	}
	if out.String() != wantClient {
		t.Fatalf("client output:\n%s\nwant:\n%s", out.String(), wantClient)
	}
	cancel()
	if !lines.Scan() || lines.Text()+"\n" != wantServerStats {
		t.Fatalf("server's last line = %q, want %q", lines.Text(), wantServerStats)
	}
	if err := <-srvDone; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-role", "proxy"},
		{"-cookie", ""},
		{"-role", "client", "-addr", "nowhere"},
		{"-role", "client", "-addr", "127.0.0.1:0"},
		{"-role", "client", "-id", "b"},
		{"extra"},
		{"-nosuchflag"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
