package kernel

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned returns a TLS config that serves and trusts one self-signed
// certificate for 127.0.0.1.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notp test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	}
}

func TestTLSRoundTrip(t *testing.T) {
	checkLeaks(t)
	tc := selfSigned(t)
	a, b := pair(t, false, func(c *Config) { c.TLS = tc })
	echo(t, b, "echo")
	got, err := a.Call(ctxT(t), b.Self(), "echo", []byte("over tls"))
	if err != nil || string(got) != "over tls" {
		t.Fatalf("TLS Call = %q, %v", got, err)
	}
	// A plain-TCP client is rejected by the TLS listener.
	c, err := net.Dial("tcp", b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{ProtoKernel, 0, 0, 0, 1, 0})
	io.Copy(io.Discard, c)
	c.Close()
	waitFor(t, "plain client rejected", func() bool { return b.Stats().RejectedHandshake == 1 })
}

// A foreign protocol shares the port with kernel traffic.
func TestListenDialMux(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	echo(t, b, "echo")
	ln, err := b.Listen('R')
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Listen('R'); err == nil {
		t.Fatal("second Listen for the same protocol succeeded")
	}
	if _, err := b.Listen(ProtoKernel); err == nil {
		t.Fatal("Listen(ProtoKernel) succeeded")
	}
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(c, 5))
		done <- err
	}()
	c, err := a.Dial(ctxT(t), b.Addr().String(), 'R')
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("mux echo = %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := a.Call(ctxT(t), b.Self(), "echo", []byte("k")); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept after Close succeeded")
	}
}
