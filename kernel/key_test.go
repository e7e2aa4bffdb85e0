package kernel

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/argon2"
)

// The master key is argon2id with the documented parameters, computed
// once per cookie per process: kernels sharing a cookie share the key.
func TestMasterKey(t *testing.T) {
	const cookie = "master key test cookie 0123456789"
	want := argon2.IDKey([]byte(cookie), []byte("notp/2 cookie master key"), 2, 19*1024, 1, 32)
	m1 := masterKey(cookie)
	if !bytes.Equal(m1, want) {
		t.Fatalf("master key %x, want argon2id(cookie, documented salt and costs) %x", m1, want)
	}
	if m2 := masterKey(cookie); &m2[0] != &m1[0] {
		t.Fatal("the same cookie was stretched twice")
	}
	if bytes.Equal(masterKey(cookie+"x"), m1) {
		t.Fatal("two cookies share a master key")
	}
	if masterKey("") != nil {
		t.Fatal("the empty cookie has a master key")
	}
}

// DeriveKey gives each label its own key, the same on every node with the
// cookie, and none without a cookie.
func TestDeriveKey(t *testing.T) {
	a, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	x, y := a.DeriveKey("purpose x"), a.DeriveKey("purpose y")
	if len(x) != 32 || bytes.Equal(x, y) {
		t.Fatalf("labels x and y: %x, %x", x, y)
	}
	if !bytes.Equal(x, b.DeriveKey("purpose x")) {
		t.Fatal("two kernels with one cookie derive different keys")
	}
	if bytes.Equal(x, a.keys.snapshot().primary().master) {
		t.Fatal("DeriveKey returned the master key")
	}
	cfg := testConfig(t)
	cfg.Cookie, cfg.Insecure = "", true
	ins, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if k := ins.DeriveKey("purpose x"); k != nil {
		t.Fatalf("insecure kernel derived %x", k)
	}
}

// BenchmarkStretch is one uncached cookie stretching: what a node pays
// once at start, and what an offline attacker pays per guess.
func BenchmarkStretch(b *testing.B) {
	for b.Loop() {
		stretch("benchmark cookie 0123456789abcdef")
	}
}
