package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp/cmd/notp-cli/internal/cmdline"
	"github.com/notp-go/notp/command"
)

// keygen prints one fresh 256-bit cookie as 64 hex digits and sends
// nothing (no node is running here); arguments are a usage error.
func TestKeygen(t *testing.T) {
	keys := map[string]bool{}
	for range 2 {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"keygen"}, nil, &out, &errb); code != exitOK || errb.Len() != 0 {
			t.Fatalf("keygen: exit %d stderr %q", code, errb.String())
		}
		key, ok := strings.CutSuffix(out.String(), "\n")
		if b, err := hex.DecodeString(key); !ok || err != nil || len(b) != 32 {
			t.Fatalf("keygen printed %q, want 64 hex digits and a newline", out.String())
		}
		keys[key] = true
	}
	if len(keys) != 2 {
		t.Fatal("two keygen runs printed the same cookie")
	}
	var out, errb bytes.Buffer
	for _, args := range [][]string{{"keygen", "extra"}, {"keygen", "--format"}, {"keygen", "--format", "yaml"},
		{"--format", "yaml", "keygen"}, {"keygen", "--format=text", "-f"}} {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), args, nil, &out, &errb); code != exitUsage || out.Len() != 0 ||
			!strings.Contains(errb.String(), "notp-cli: ") {
			t.Fatalf("%q: exit %d stdout %q stderr %q, want usage error", args, code, out.String(), errb.String())
		}
	}
	// --format, before or after keygen (keygen's wins), prints the cookie
	// alone (text, the default) or as an ok reply whose data holds it.
	for _, c := range []struct {
		args []string
		json bool
	}{
		{[]string{"keygen", "--format", "text"}, false},
		{[]string{"keygen", "--format=json"}, true},
		{[]string{"--format", "json", "keygen"}, true},
		{[]string{"--format", "text", "keygen"}, false},
		{[]string{"--format", "json", "keygen", "--format", "text"}, false},
		{[]string{"--format", "text", "keygen", "--format", "json"}, true},
	} {
		out.Reset()
		errb.Reset()
		if code := run(context.Background(), c.args, nil, &out, &errb); code != exitOK || errb.Len() != 0 {
			t.Fatalf("%q: exit %d stderr %q", c.args, code, errb.String())
		}
		key := strings.TrimSuffix(out.String(), "\n")
		if c.json {
			r := decodeOutput(t, out.String())
			var d struct {
				Key string `json:"key"`
			}
			if !r.OK || r.Decode(&d) != nil || !strings.HasPrefix(out.String(), "{\n  \"ok\": true,\n  \"data\": {\n    \"key\": ") {
				t.Fatalf("%q printed %q, want {\"ok\": true, \"data\": {\"key\": ...}}", c.args, out.String())
			}
			key = d.Key
		}
		if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
			t.Fatalf("%q printed %q, want a cookie of 64 hex digits", c.args, out.String())
		}
	}
	// keygen needs no key, even when the configured key file is unreadable.
	out.Reset()
	if code := run(context.Background(), []string{"--key-file", filepath.Join(t.TempDir(), "none"), "keygen"}, nil, &out, &errb); code != exitOK || out.Len() != 65 {
		t.Fatalf("keygen with a missing key file: exit %d stdout %q", code, out.String())
	}
}

// The shell's keygen prints a cookie without sending anything: alone on
// a line, or as JSON with --format json (after keygen, or given to the
// shell); a bad argument prints its usage.
func TestShellKeygen(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true})
	script := "keygen\nkeygen --format json\nkeygen --format yaml\nkeygen x\nhelp keygen\nexit\n"
	code, out, errs := cliTo(k.Self(), testCookie, 5*time.Second, strings.NewReader(script))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	_, rest, _ := strings.Cut(out, "> ")
	key, rest, _ := strings.Cut(rest, "\n")
	if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
		t.Fatalf("shell keygen printed %q, want 64 hex digits", key)
	}
	wantInOrder(t, rest, "> {\n  \"ok\": true,\n  \"data\": {\n    \"key\": \"",
		"> keygen: --format \"yaml\": want text or json\nUsage: keygen [--format text|json]\n",
		"> keygen takes no arguments, got \"x\"\nUsage: keygen [--format text|json]\n",
		"> Usage: keygen [--format text|json]\n\nPrints a new random cluster cookie")
	for _, c := range f.got() {
		if c.event != command.Ping {
			t.Fatalf("keygen sent %q to the node", c.event)
		}
	}

	// The shell's --format json applies to keygen too; keygen's own wins.
	code, out, errs = cliTo(k.Self(), testCookie, 5*time.Second, strings.NewReader("keygen\nkeygen --format text\nexit\n"), "--format", "json")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	_, rest, _ = strings.Cut(out, "> {\n  \"ok\": true,\n  \"data\": {\n    \"key\": \"")
	_, rest, _ = strings.Cut(rest, "> ")
	key, _, _ = strings.Cut(rest, "\n")
	if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
		t.Fatalf("shell --format json: keygen, keygen --format text printed\n%s", out)
	}
}

// A node is reached with the cookie from NOTP_COOKIE or --key-file, and a
// bad key file is a usage error with nothing sent.
func TestKeyFromEnvAndFile(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true})
	self := k.Self()
	base := []string{"-I", self.ID, "-H", self.Host, "-p", strconv.Itoa(self.Port), "--timeout", "5s"}
	runArgs := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(append([]string(nil), base...), args...), nil, &out, &errb)
		return code, out.String() + errb.String()
	}
	t.Setenv(cmdline.EnvCookie, testCookie)
	if code, out := runArgs("ping"); code != exitOK {
		t.Fatalf("key from %s: exit %d\n%s", cmdline.EnvCookie, code, out)
	}
	keyFile := filepath.Join(t.TempDir(), "cookie")
	if err := os.WriteFile(keyFile, []byte(testCookie+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(cmdline.EnvCookie, "a wrong cookie, 16+ bytes")
	if code, out := runArgs("--key-file", keyFile, "ping"); code != exitOK {
		t.Fatalf("key from --key-file over a wrong %s: exit %d\n%s", cmdline.EnvCookie, code, out)
	}
	if code, _ := runArgs("ping"); code != exitFail {
		t.Fatalf("wrong key from %s: exit %d, want %d", cmdline.EnvCookie, code, exitFail)
	}
	calls := len(f.got())
	if code, out := runArgs("--key-file", filepath.Join(t.TempDir(), "none"), "ping"); code != exitUsage || !strings.Contains(out, "--key-file") {
		t.Fatalf("missing key file: exit %d\n%s", code, out)
	}
	if len(f.got()) != calls {
		t.Fatal("a usage error sent a command")
	}
}
