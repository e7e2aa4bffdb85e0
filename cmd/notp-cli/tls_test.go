package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/internal/testcert"
	"github.com/notp-go/notp/kernel"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files and returns their paths with the TLS config of a node
// that serves it and requires clients to present it.
func writeSelfSigned(t *testing.T) (certFile, keyFile string, server *tls.Config) {
	t.Helper()
	c := testcert.New(t)
	certFile, keyFile = c.Files(t)
	return certFile, keyFile, c.Config
}

// A node that speaks only TLS and requires client certificates: the CLI
// reaches it with the --tls-* flags, and fails cleanly without them (exit
// 1, nothing printed but the ok:false JSON); bad TLS flags are usage
// errors (exit 2, nothing sent).
func TestTLSFlags(t *testing.T) {
	certFile, keyFile, srvTLS := writeSelfSigned(t)
	k, err := kernel.New(kernel.Config{
		Node: notp.Node{ID: "tlsnode", Host: "127.0.0.1"}, Cookie: testCookie, TLS: srvTLS,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	f := startFake(t, k, command.Ping)
	f.set(command.Ping, command.Reply{OK: true})
	self := k.Self()

	code, out, errOut := cliTo(self, testCookie, 5*time.Second, nil, "--tls-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile, "ping")
	if r := decodeOutput(t, out); code != 0 || !r.OK {
		t.Fatalf("ping over TLS: exit %d, %s %s", code, out, errOut)
	}
	for name, flags := range map[string][]string{
		"plain TCP":         nil,
		"no client cert":    {"--tls-ca", certFile},
		"system roots":      {"--tls", "--tls-cert", certFile, "--tls-key", keyFile},
		"wrong server name": {"--tls-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile, "--tls-server-name", "other"},
	} {
		code, out, _ := cliTo(self, testCookie, 2*time.Second, nil, append(flags, "ping")...)
		if r := decodeOutput(t, out); code != 1 || r.OK {
			t.Fatalf("%s: exit %d, %s", name, code, out)
		}
	}
	// Skipping verification still needs the client certificate.
	code, out, _ = cliTo(self, testCookie, 5*time.Second, nil, "--tls-insecure-skip-verify", "--tls-cert", certFile, "--tls-key", keyFile, "ping")
	if r := decodeOutput(t, out); code != 0 || !r.OK {
		t.Fatalf("ping with --tls-insecure-skip-verify: exit %d, %s", code, out)
	}
	for name, tt := range map[string]struct {
		flags []string
		msg   string
	}{
		"missing CA file": {[]string{"--tls-ca", filepath.Join(t.TempDir(), "none.pem")}, "--tls-ca"},
		"CA without PEM":  {[]string{"--tls-ca", keyFile}, "no PEM certificate"},
		"cert, no key":    {[]string{"--tls-cert", certFile}, "go together"},
		"key as cert":     {[]string{"--tls-cert", keyFile, "--tls-key", keyFile}, "--tls-cert/--tls-key"},
	} {
		code, out, errOut := cliTo(self, testCookie, 2*time.Second, nil, append(tt.flags, "ping")...)
		if code != 2 || out != "" || !strings.Contains(errOut, tt.msg) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q (want %q)", name, code, out, errOut, tt.msg)
		}
	}
	if n := len(f.got()); n != 2 {
		t.Fatalf("the node served %d pings, want 2", n)
	}
}
