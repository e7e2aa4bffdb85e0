package kernel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"runtime/debug"
	"sync"

	"github.com/notp-go/notp/internal/cookiekey"
)

// MinCookieLen is the shortest cookie New accepts without
// Config.AllowWeakCookie, in bytes. 16 random bytes are 128 bits: beyond
// any guessing however cheap a guess is. A human-chosen cookie is far
// weaker than its length suggests; generate one with `notp-cli keygen`.
const MinCookieLen = 16

// The stretching parameters and key labels are part of the protocol and
// live in internal/cookiekey, which the attack bench's hand-written
// client shares. The kernel's short names for the labels:
const (
	labelProofDialer   = cookiekey.ProofDialer
	labelProofAcceptor = cookiekey.ProofAcceptor
	labelKeyD2A        = cookiekey.KeyDialerToAcceptor
	labelKeyA2D        = cookiekey.KeyAcceptorToDialer
	labelDerive        = cookiekey.DerivePrefix
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
	e.once.Do(func() {
		e.key = stretch(cookie)
		// argon2id's 19 MiB of scratch is garbage now; hand it back to the
		// OS at once instead of leaving it resident until the scavenger
		// gets to it (it more than doubled an idle node's RSS). This runs
		// once per cookie per process.
		debug.FreeOSMemory()
	})
	return e.key
}

// stretch is the uncached cookie stretching: argon2id over the cookie.
func stretch(cookie string) []byte { return cookiekey.Stretch(cookie) }

// deriveKey is HMAC-SHA256(master, label || data).
func deriveKey(master []byte, label string, data []byte) []byte {
	return cookiekey.Derive(master, label, data)
}

// DeriveKey returns a 32-byte key for the given purpose, derived from the
// cluster cookie: HMAC-SHA256(master, "notp/2 derive " || label), where
// master is the argon2id-stretched cookie. Every node with the same
// cookie derives the same key for a label, and keys of different labels
// are independent, so other protocols sharing the cookie (gossip's
// memberlist encryption) get keys of their own instead of the cookie.
// Labels should name their purpose and version, e.g. "memberlist
// SecretKey AES-256". DeriveKey returns nil when the kernel has no cookie
// (Config.Insecure). It is cheap: the stretching happened in New. The key
// is the primary's: after [Keyring.Use] it changes.
func (k *Kernel) DeriveKey(label string) []byte {
	p := k.keys.snapshot().primary()
	if p == nil {
		return nil
	}
	return deriveKey(p.master, labelDerive, []byte(label))
}
