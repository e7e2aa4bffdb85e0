package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// The PEM pair loads, and the config verifies its own certificate.
func TestNew(t *testing.T) {
	c := New(t)
	pair, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: c.Config.RootCAs, DNSName: "127.0.0.1",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	if _, err := pair.Leaf.Verify(opts); err != nil {
		t.Fatalf("the certificate does not verify against its own pool: %v", err)
	}
}
