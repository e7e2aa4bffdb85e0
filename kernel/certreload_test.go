package kernel

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testcert"
)

// writeAtomic replaces name's content the way deployment tools do: a new
// file renamed over the old one.
func writeAtomic(t *testing.T, name string, b []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

// presented dials addr with TLS and returns the leaf certificate the
// server presents.
func presented(t *testing.T, addr string, cfg *tls.Config) []byte {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Raw
}

// A node whose certificate files are replaced presents the new
// certificate in its next handshakes, while calls on the connections
// made with the old one go on succeeding.
func TestCertReloadUnderTraffic(t *testing.T) {
	checkLeaks(t)
	oldC, newC := testcert.New(t), testcert.New(t)
	pool := x509.NewCertPool()
	for _, c := range []*testcert.Cert{oldC, newC} {
		pool.AddCert(leaf(t, c))
	}
	trust := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.RootCAs, c.ClientCAs = pool, pool
		return c
	}
	certFile, keyFile := oldC.Files(t)
	rl, err := NewCertReloader(certFile, keyFile, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	bTLS := trust(oldC.Config)
	rl.Apply(bTLS)
	a := startKernel(t, func(c *Config) { c.TLS = trust(oldC.Config) })
	b := startKernel(t, func(c *Config) { c.TLS = bTLS })
	echo(t, b, "echo")
	echo(t, a, "echo")
	connect(t, a, b)

	var calls atomic.Int64
	var failed atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := a.Call(context.Background(), b.Self(), "echo", []byte("x")); err != nil {
				failed.Store(err)
				return
			}
			calls.Add(1)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	probe := trust(oldC.Config)
	if got := presented(t, b.Addr().String(), probe); !bytes.Equal(got, leaf(t, oldC).Raw) {
		t.Fatal("b does not present the certificate of its files")
	}
	waitFor(t, "calls before the swap", func() bool { return calls.Load() > 50 })
	writeAtomic(t, certFile, newC.CertPEM)
	writeAtomic(t, keyFile, newC.KeyPEM)
	waitFor(t, "the new certificate presented", func() bool {
		return bytes.Equal(presented(t, b.Addr().String(), probe), leaf(t, newC).Raw)
	})
	n := calls.Load()
	waitFor(t, "calls after the swap", func() bool { return calls.Load() > n+50 || failed.Load() != nil })
	if err := failed.Load(); err != nil {
		t.Fatalf("a call failed during the certificate swap: %v", err)
	}
	// b's dialed handshakes present it too.
	connect(t, b, a)
	if _, err := b.Call(ctxT(t), a.Self(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rl.Certificate().Certificate[0], leaf(t, newC).Raw) || rl.Reloads() == 0 || rl.Err() != nil {
		t.Fatalf("reloader: %d reloads, err %v", rl.Reloads(), rl.Err())
	}
}

func leaf(t *testing.T, c *testcert.Cert) *x509.Certificate {
	t.Helper()
	x, err := x509.ParseCertificate(c.Config.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// A pair that does not load (a key of another certificate, a file over
// MaxCertFileSize, a missing file) leaves the current certificate in use
// and reports why.
func TestCertReloadBadFiles(t *testing.T) {
	oldC, newC := testcert.New(t), testcert.New(t)
	certFile, keyFile := oldC.Files(t)
	rl, err := NewCertReloader(certFile, keyFile, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := rl.Certificate()
	writeAtomic(t, certFile, newC.CertPEM) // the key is still the old one
	if err := rl.Reload(); err == nil || rl.Err() == nil {
		t.Fatal("a certificate with another's key loaded")
	}
	writeAtomic(t, certFile, bytes.Repeat([]byte("x"), MaxCertFileSize+1))
	if err := rl.Reload(); !errors.Is(err, errCertFileTooLarge) {
		t.Fatalf("oversized file: %v", err)
	}
	os.Remove(certFile)
	if err := rl.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if rl.Certificate() != want {
		t.Fatal("a failed reload replaced the certificate")
	}
	if _, err := NewCertReloader(filepath.Join(t.TempDir(), "none"), keyFile, 0); err == nil {
		t.Fatal("NewCertReloader of a missing file succeeded")
	}
}
