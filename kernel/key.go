package kernel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/argon2"
)

// MinCookieLen is the shortest cookie New accepts without
// Config.AllowWeakCookie, in bytes. 16 random bytes are 128 bits: beyond
// any guessing however cheap a guess is. A human-chosen cookie is far
// weaker than its length suggests; generate one with `notp-cli keygen`.
const MinCookieLen = 16

// Cookie stretching parameters: argon2id with these costs turns the cookie
// into the master key from which every other key is derived. They are part
// of the protocol (nodes with different values do not understand each
// other): change them only with a new wire version and new labels.
const (
	// stretchSalt is argon2id's salt: fixed, so that every node derives
	// the same master key from the same cookie. It only separates notp's
	// derivation from other uses of the same secret; the cookie itself
	// must carry the entropy.
	stretchSalt = "notp/2 cookie master key"
	// stretchTime, stretchMemory (KiB) and stretchThreads are argon2id's
	// passes, memory and lanes: 2 passes over 19 MiB with one lane (a
	// commonly recommended minimum for argon2id). Each guess of an offline
	// attacker costs the same.
	stretchTime    = 2
	stretchMemory  = 19 << 10
	stretchThreads = 1
	// masterKeySize is the size of the master key and of derived keys.
	masterKeySize = 32
)

// Labels of the keys derived from the master key. Append-only: a label
// names one key's purpose forever. The hello and session labels are
// followed by the hello transcript (see internal/wire's package doc);
// labelDerive is followed by the caller's label (see [Kernel.DeriveKey]).
// No label is a prefix of another, so no two derivations share an input.
const (
	labelProofDialer   = "notp/2 proof dialer"
	labelProofAcceptor = "notp/2 proof acceptor"
	labelKeyD2A        = "notp/2 key dialer->acceptor"
	labelKeyA2D        = "notp/2 key acceptor->dialer"
	labelDerive        = "notp/2 derive "
)

// masterKeys caches master keys process-wide, so that the many kernels of
// one process (tests make hundreds) stretch a cookie once. Entries are
// keyed by an HMAC of the cookie under a per-process random key, so the
// cache holds no fast-to-check image of the cookie. The cache is bounded:
// when full an arbitrary entry is dropped (its users keep their copy).
var masterKeys struct {
	once sync.Once
	id   []byte // HMAC key of the cache index
	mu   sync.Mutex
	m    map[[sha256.Size]byte]*masterEntry
}

// maxMasterKeys bounds the master key cache: a process normally uses one
// cookie, tests a handful.
const maxMasterKeys = 64

type masterEntry struct {
	once sync.Once
	key  []byte
}

// masterKey returns the master key of cookie ("" has none: nil),
// stretching it on first use in this process. Concurrent first uses of
// one cookie wait for one derivation.
func masterKey(cookie string) []byte {
	if cookie == "" {
		return nil
	}
	c := &masterKeys
	c.once.Do(func() {
		c.id = make([]byte, 32)
		rand.Read(c.id)
		c.m = make(map[[sha256.Size]byte]*masterEntry)
	})
	m := hmac.New(sha256.New, c.id)
	m.Write([]byte(cookie))
	var idx [sha256.Size]byte
	m.Sum(idx[:0])
	c.mu.Lock()
	e := c.m[idx]
	if e == nil {
		if len(c.m) >= maxMasterKeys {
			for k := range c.m {
				delete(c.m, k)
				break
			}
		}
		e = &masterEntry{}
		c.m[idx] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.key = stretch(cookie) })
	return e.key
}

// stretch is the uncached cookie stretching: argon2id over the cookie.
func stretch(cookie string) []byte {
	return argon2.IDKey([]byte(cookie), []byte(stretchSalt), stretchTime, stretchMemory, stretchThreads, masterKeySize)
}

// deriveKey is HMAC-SHA256(master, label || data).
func deriveKey(master []byte, label string, data []byte) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	m.Write(data)
	return m.Sum(nil)
}

// DeriveKey returns a 32-byte key for the given purpose, derived from the
// cluster cookie: HMAC-SHA256(master, "notp/2 derive " || label), where
// master is the argon2id-stretched cookie. Every node with the same
// cookie derives the same key for a label, and keys of different labels
// are independent, so other protocols sharing the cookie (gossip's
// memberlist encryption) get keys of their own instead of the cookie.
// Labels should name their purpose and version, e.g. "memberlist
// SecretKey AES-256". DeriveKey returns nil when the kernel has no cookie
// (Config.Insecure). It is cheap: the stretching happened in New.
func (k *Kernel) DeriveKey(label string) []byte {
	if k.master == nil {
		return nil
	}
	return deriveKey(k.master, labelDerive, []byte(label))
}
