package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/cookiefile"
	"github.com/notp-go/notp/internal/testcert"
)

// testCookie is a cookie long enough for the kernel.
const testCookie = "examples/node test cookie 0123456789"

// The cookie comes from -cookie, else -cookie-file, else NOTP_COOKIE;
// running without one takes an explicit -insecure.
func TestCookieSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "cookie")
	if err := os.WriteFile(file, []byte("from the file, 16+ bytes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env     string
		args    []string
		want    string
		wantErr string
	}{
		{"from the env, 16+ bytes", []string{"-cookie", "from the flag, 16+ bytes", "-cookie-file", file}, "from the flag, 16+ bytes", ""},
		{"from the env, 16+ bytes", []string{"-cookie-file", file}, "from the file, 16+ bytes", ""},
		{"from the env, 16+ bytes", nil, "from the env, 16+ bytes", ""},
		{"", []string{"-insecure"}, "", ""},
		{"", nil, "", "notp-cli keygen"},
		{"", []string{"-cookie", ""}, "", "-insecure"},
		{"from the env, 16+ bytes", []string{"-insecure"}, "", "contradict"},
		{"", []string{"-cookie-file", empty}, "", "-cookie-file"},
		{"", []string{"-cookie-file", filepath.Join(dir, "none")}, "", "-cookie-file"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " ")+" env="+tt.env, func(t *testing.T) {
			t.Setenv(cookiefile.EnvVar, tt.env)
			o, err := parseFlags(append([]string{"-id", "a"}, tt.args...), &bytes.Buffer{})
			if tt.wantErr != "" {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFlags: %v, want a usage error about %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || o.cookie != tt.want || o.insecure != (tt.want == "") {
				t.Fatalf("parseFlags = cookie %q insecure %v, %v; want %q", o.cookie, o.insecure, err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	t.Setenv(cookiefile.EnvVar, "")
	o, err := parseFlags([]string{"-id", "a", "-insecure"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := notp.Node{ID: "a", Host: "127.0.0.1", Port: 7022}
	if o.node != want || o.ring != "ring" || o.cookie != "" || o.flush != "" || o.meet != nil || o.level != slog.LevelInfo || o.metrics != "" {
		t.Fatalf("defaults: %+v", o)
	}
	o, err = parseFlags([]string{"-id", "b", "-host", "10.0.0.2", "-port", "7100", "-cookie", testCookie, "-ring", "r",
		"-flush", "/tmp/b.ring", "-meet", "a@10.0.0.1:7022", "-log", "debug", "-metrics", "127.0.0.1:9100"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.node != (notp.Node{ID: "b", Host: "10.0.0.2", Port: 7100}) || o.cookie != testCookie || o.ring != "r" ||
		o.flush != "/tmp/b.ring" || *o.meet != (notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022}) || o.level != slog.LevelDebug ||
		o.metrics != "127.0.0.1:9100" {
		t.Fatalf("all flags: %+v", o)
	}
}

// The TLS flags build a mutual-TLS config that trusts -tls-ca, or the
// certificate itself without it; -busy-poll reaches the options.
func TestTLSFlags(t *testing.T) {
	t.Setenv(cookiefile.EnvVar, testCookie)
	certFile, keyFile := writeCert(t)
	o, err := parseFlags([]string{"-id", "a", "-tls-cert", certFile, "-tls-key", keyFile, "-busy-poll", "50us"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.tls == nil || o.tls.GetCertificate == nil || o.tls.GetClientCertificate == nil || o.certs == nil ||
		o.tls.ClientAuth != tls.RequireAndVerifyClientCert ||
		o.tls.RootCAs == nil || o.tls.ClientCAs == nil || o.busyPoll != 50*time.Microsecond {
		t.Fatalf("options: %+v", o)
	}
	served, err := o.tls.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(served.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: o.tls.RootCAs, DNSName: "127.0.0.1"}); err != nil {
		t.Fatalf("the node does not trust its own certificate: %v", err)
	}
	o, err = parseFlags([]string{"-id", "a", "-tls-cert", certFile, "-tls-key", keyFile, "-tls-ca", certFile}, &bytes.Buffer{})
	if err != nil || o.tls == nil {
		t.Fatalf("with -tls-ca: %+v, %v", o, err)
	}
	if o, err := parseFlags([]string{"-id", "a"}, &bytes.Buffer{}); err != nil || o.tls != nil || o.busyPoll != 0 {
		t.Fatalf("without TLS flags: %+v, %v", o, err)
	}
}

// writeCert writes a fresh self-signed certificate and key as PEM files.
func writeCert(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	return testcert.New(t).Files(t)
}

// Invalid flags exit with status 2 and say what is wrong.
func TestBadFlags(t *testing.T) {
	t.Setenv(cookiefile.EnvVar, testCookie)
	certFile, keyFile := writeCert(t)
	tests := []struct {
		args []string
		want string
	}{
		{nil, "-id is required"},
		{[]string{"-id", "a", "-port", "0"}, "-port 0"},
		{[]string{"-id", "a", "-port", "65536"}, "-port 65536"},
		{[]string{"-id", "a", "-port", "x"}, "invalid value"},
		{[]string{"-id", "a@b"}, "'@'"},
		{[]string{"-id", "a", "-host", ""}, "empty host"},
		{[]string{"-id", "a", "-ring", ""}, "-ring"},
		{[]string{"-id", "a", "-meet", "bad host:7022"}, "-meet"},
		{[]string{"-id", "a", "-meet", "127.0.0.1:0"}, "-meet"},
		{[]string{"-id", "a", "-meet", "b@127.0.0.1:0"}, "-meet"},
		{[]string{"-id", "a", "-log", "loud"}, "-log"},
		{[]string{"-id", "a", "extra"}, "unexpected arguments"},
		{[]string{"-nope"}, "flag provided but not defined"},
		{[]string{"-id", "a", "-busy-poll", "2s"}, "-busy-poll"},
		{[]string{"-id", "a", "-busy-poll", "-1ms"}, "-busy-poll"},
		{[]string{"-id", "a", "-metrics", "9100"}, "-metrics"},
		{[]string{"-id", "a", "-metrics", "127.0.0.1:0"}, "-metrics"},
		{[]string{"-id", "a", "-metrics", "127.0.0.1:metrics"}, "-metrics"},
		{[]string{"-id", "a", "-tls-cert", certFile}, "go together"},
		{[]string{"-id", "a", "-tls-ca", certFile}, "go together"},
		{[]string{"-id", "a", "-tls-cert", keyFile, "-tls-key", keyFile}, "-tls-cert/-tls-key"},
		{[]string{"-id", "a", "-tls-cert", certFile, "-tls-key", keyFile, "-tls-ca", keyFile}, "no PEM certificate"},
		{[]string{"-id", "a", "-tls-cert", certFile, "-tls-key", keyFile, "-tls-ca", filepath.Join(t.TempDir(), "none")}, "-tls-ca"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stderr); code != 2 {
				t.Fatalf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.want)
			}
			_, err := parseFlags(tt.args, &bytes.Buffer{})
			if !errors.Is(err, errUsage) {
				t.Fatalf("parseFlags: %v, want errUsage", err)
			}
		})
	}
	if code := run(context.Background(), []string{"-h"}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
}

// -meet takes a node (id@host:port) or seeds for discovery: host:port,
// DNS names (the node's -port when they have none) and SRV names.
func TestMeetSeedsFlag(t *testing.T) {
	t.Setenv(cookiefile.EnvVar, testCookie)
	o, err := parseFlags([]string{"-id", "a", "-port", "7030", "-meet", "10.0.0.1:7022,notp.default.svc.cluster.local,_notp._tcp.notp.default.svc.cluster.local"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:7022", "notp.default.svc.cluster.local", "_notp._tcp.notp.default.svc.cluster.local"}
	if o.meet != nil || !slices.Equal(o.seeds, want) {
		t.Fatalf("seeds %q, meet %v; want %q", o.seeds, o.meet, want)
	}
}

// SIGHUP reloads the certificate files: the node then serves the new
// certificate; a reload that fails keeps the old one.
func TestReloadOnSignal(t *testing.T) {
	certFile, keyFile := writeCert(t)
	_, certs, err := tlsConfig(certFile, keyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	old := certs.Certificate()
	next := testcert.New(t)
	if err := os.WriteFile(certFile, next.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, next.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal)
	done := make(chan struct{})
	var logs bytes.Buffer
	go func() {
		defer close(done)
		reloadOnSignal(ctx, hup, certs, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP // the first is handled once this one is taken
	cancel()
	<-done
	if certs.Certificate() == old || !bytes.Equal(certs.Certificate().Certificate[0], next.Config.Certificates[0].Certificate[0]) {
		t.Fatal("SIGHUP did not load the new certificate")
	}
	if !strings.Contains(logs.String(), "tls certificate reloaded") {
		t.Fatalf("logs: %s", logs.String())
	}

	// A reload that fails (a half-written key file) keeps the certificate
	// loaded last and says why.
	loaded := certs.Certificate()
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\ntrunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	ctx, cancel = context.WithCancel(context.Background())
	done = make(chan struct{})
	go func() {
		defer close(done)
		reloadOnSignal(ctx, hup, certs, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	hup <- syscall.SIGHUP
	hup <- syscall.SIGHUP
	cancel()
	<-done
	if certs.Certificate() != loaded {
		t.Fatal("a failed reload replaced the certificate")
	}
	if strings.Contains(logs.String(), "tls certificate reloaded") || !strings.Contains(logs.String(), "reload failed; keeping the current one") {
		t.Fatalf("logs after a failed reload: %s", logs.String())
	}
}
