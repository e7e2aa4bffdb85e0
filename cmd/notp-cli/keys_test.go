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
	if code := run(context.Background(), []string{"keygen", "extra"}, nil, &out, &errb); code != exitUsage || out.Len() != 0 {
		t.Fatalf("keygen extra: exit %d stdout %q, want usage error", code, out.String())
	}
	// keygen needs no key, even when the configured key file is unreadable.
	out.Reset()
	if code := run(context.Background(), []string{"--key-file", filepath.Join(t.TempDir(), "none"), "keygen"}, nil, &out, &errb); code != exitOK || out.Len() != 65 {
		t.Fatalf("keygen with a missing key file: exit %d stdout %q", code, out.String())
	}
}

// The shell's keygen prints a cookie without sending anything.
func TestShellKeygen(t *testing.T) {
	k := startKernel(t, "node1", testCookie)
	f := startFake(t, k)
	f.set(command.Ping, command.Reply{OK: true})
	code, out, errs := cliTo(k.Self(), testCookie, 5*time.Second, strings.NewReader("keygen\nhelp keygen\nexit\n"))
	if code != 0 || errs != "" {
		t.Fatalf("exit %d stderr %q\n%s", code, errs, out)
	}
	_, rest, _ := strings.Cut(out, "> ")
	key, rest, _ := strings.Cut(rest, "\n")
	if b, err := hex.DecodeString(key); err != nil || len(b) != 32 {
		t.Fatalf("shell keygen printed %q, want 64 hex digits", key)
	}
	if !strings.Contains(rest, "Usage: keygen\n") {
		t.Fatalf("help keygen missing from:\n%s", out)
	}
	for _, c := range f.got() {
		if c.event != command.Ping {
			t.Fatalf("keygen sent %q to the node", c.event)
		}
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
