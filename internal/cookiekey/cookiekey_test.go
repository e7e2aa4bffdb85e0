package cookiekey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
)

// Stretch is argon2id with the documented salt and costs: the values
// written out here are the protocol, so a change to a constant fails.
func TestStretch(t *testing.T) {
	const cookie = "cookiekey test cookie 0123456789"
	want := argon2.IDKey([]byte(cookie), []byte("notp/2 cookie master key"), 2, 19*1024, 1, 32)
	if got := Stretch(cookie); !bytes.Equal(got, want) {
		t.Fatalf("Stretch = %x, want argon2id(cookie, documented salt and costs) %x", got, want)
	}
	if bytes.Equal(Stretch(cookie+"x"), want) {
		t.Fatal("two cookies share a master key")
	}
}

// Derive is HMAC-SHA256(master, label || data).
func TestDerive(t *testing.T) {
	master := bytes.Repeat([]byte{7}, KeySize)
	m := hmac.New(sha256.New, master)
	m.Write([]byte("label data"))
	want := m.Sum(nil)
	if got := Derive(master, "label ", []byte("data")); !bytes.Equal(got, want) {
		t.Fatalf("Derive = %x, want %x", got, want)
	}
	if len(want) != KeySize {
		t.Fatalf("derived keys are %d bytes, KeySize is %d", len(want), KeySize)
	}
}

// The labels are the documented strings, and no label is a prefix of
// another: otherwise two derivations could share an input.
func TestLabels(t *testing.T) {
	labels := map[string]string{
		ProofDialer:         "notp/2 proof dialer",
		ProofAcceptor:       "notp/2 proof acceptor",
		KeyDialerToAcceptor: "notp/2 key dialer->acceptor",
		KeyAcceptorToDialer: "notp/2 key acceptor->dialer",
		DerivePrefix:        "notp/2 derive ",
		KeyID:               "notp/2 key id",
	}
	if len(labels) != 6 {
		t.Fatalf("two labels are equal: %q", labels)
	}
	for got, want := range labels {
		if got != want {
			t.Errorf("label %q, want %q", got, want)
		}
		for other := range labels {
			if other != got && strings.HasPrefix(other, got) {
				t.Errorf("label %q is a prefix of %q", got, other)
			}
		}
	}
	if ChannelBinding != "EXPORTER-notp/2 hello channel binding" {
		t.Errorf("ChannelBinding = %q", ChannelBinding)
	}
}
