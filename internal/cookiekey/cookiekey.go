// Package cookiekey is the key schedule of the notp kernel protocol: how
// the cluster cookie becomes a master key and how every other key is
// derived from it. It is internal: the kernel uses it for its hello and
// kernel's Kernel.DeriveKey, and the attack bench uses it to speak the
// hello by hand. The byte-level hello that uses these keys is documented
// in internal/wire.
//
// The master key is argon2id over the cookie with fixed parameters
// ([Stretch]); each key is HMAC-SHA256(master, label || data) ([Derive])
// with one of the labels below. The parameters and labels are part of the
// protocol: nodes with different values do not understand each other, so
// change them only with a new wire version and new labels.
package cookiekey

import (
	"crypto/hmac"
	"crypto/sha256"

	"golang.org/x/crypto/argon2"
)

// Cookie stretching parameters.
const (
	// Salt is argon2id's salt: fixed, so that every node derives the same
	// master key from the same cookie. It only separates notp's
	// derivation from other uses of the same secret; the cookie itself
	// must carry the entropy.
	Salt = "notp/2 cookie master key"
	// Time, Memory (KiB) and Threads are argon2id's passes, memory and
	// lanes: 2 passes over 19 MiB with one lane (a commonly recommended
	// minimum for argon2id). Each guess of an offline attacker costs the
	// same.
	Time    = 2
	Memory  = 19 << 10
	Threads = 1
	// KeySize is the size in bytes of the master key and of derived keys.
	KeySize = 32
)

// Labels of the keys derived from the master key. Append-only: a label
// names one key's purpose forever. The proof and session labels are
// followed by the hello transcript (see internal/wire's package doc);
// DerivePrefix is followed by the label given to kernel's Kernel.DeriveKey.
// No label is a prefix of another, so no two derivations share an input.
const (
	ProofDialer         = "notp/2 proof dialer"
	ProofAcceptor       = "notp/2 proof acceptor"
	KeyDialerToAcceptor = "notp/2 key dialer->acceptor"
	KeyAcceptorToDialer = "notp/2 key acceptor->dialer"
	DerivePrefix        = "notp/2 derive "
	// KeyID labels a key's public fingerprint (no data follows): what a
	// keyring lists instead of the key. Its first bytes name the key to
	// an operator; they cost an attacker as much to test a guess against
	// as any other derived value (one stretching per guess).
	KeyID = "notp/2 key id"
)

// ChannelBinding is the TLS exporter label (RFC 5705 keying material,
// no context, 32 bytes) appended to the hello transcript under TLS.
// Append-only, like the key labels.
const ChannelBinding = "EXPORTER-notp/2 hello channel binding"

// Stretch returns the master key of cookie: argon2id(cookie, [Salt],
// [Time], [Memory], [Threads]), [KeySize] bytes. It costs tens of
// milliseconds and 19 MiB on purpose; callers that need it often cache it.
func Stretch(cookie string) []byte {
	return argon2.IDKey([]byte(cookie), []byte(Salt), Time, Memory, Threads, KeySize)
}

// Derive returns HMAC-SHA256(master, label || data).
func Derive(master []byte, label string, data []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	m.Write(data)
	return m.Sum(nil)
}
