package kernel

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/notp-go/notp/internal/cookiekey"
)

// MaxKeys bounds the keys a [Keyring] holds, the primary included. A
// rotation needs two (the old and the new cookie); each installed key
// costs every hello one HMAC per key on a wrong proof, and each first
// install one argon2id stretching (19 MiB of scratch for tens of
// milliseconds).
const MaxKeys = 4

// DefaultKeyRetireGrace is the default of Config.KeyRetireGrace.
const DefaultKeyRetireGrace = 10 * time.Second

// Keyring errors.
var (
	// ErrKeyringFull: Install would take the keyring over MaxKeys keys.
	ErrKeyringFull = errors.New("kernel: keyring full")
	// ErrUnknownKey: Use of a key that is not installed.
	ErrUnknownKey = errors.New("kernel: key not installed")
	// ErrPrimaryKey: Remove of the primary key (make another primary
	// first).
	ErrPrimaryKey = errors.New("kernel: cannot remove the primary key")
)

// ringKey is one installed cookie: its stretched master key and public
// fingerprint. The cookie itself is not kept.
type ringKey struct {
	id     string // KeyID: hex of the first 8 bytes of HMAC(master, "notp/2 key id")
	master []byte
}

// keySet is an immutable snapshot of the keyring: the primary first.
type keySet struct {
	keys []*ringKey
}

func (s *keySet) primary() *ringKey {
	if s == nil || len(s.keys) == 0 {
		return nil
	}
	return s.keys[0]
}

// Keyring is the set of cookies a kernel accepts, one of which (the
// primary) it proves with when it dials. A node accepts a hello proven
// with any installed key; the session is then keyed by that key. This is
// what rotates a cluster's cookie without downtime: install the new
// cookie on every node, make it primary on every node, then remove the
// old one from every node.
//
// Keys are named by their KeyID, a fingerprint that reveals nothing
// faster than the cookie's stretching does; the keyring never returns,
// logs or puts a cookie in an error. Get it with [Kernel.Keyring]; its
// methods are safe for concurrent use. Install stretches the cookie (tens
// of milliseconds, once per cookie per process); the others are cheap,
// apart from Remove's closing of the connections keyed by the removed key,
// which happens in the background.
type Keyring struct {
	k    *Kernel
	mu   sync.Mutex // serializes changes
	weak bool       // Config.AllowWeakCookie
	set  atomic.Pointer[keySet]

	cmu     sync.Mutex
	changed chan struct{} // closed and replaced by every change
}

// KeyInfo describes one installed key.
type KeyInfo struct {
	// ID is the key's fingerprint (16 hex digits), the same on every node
	// with the cookie.
	ID string
	// Primary reports whether this node proves with the key.
	Primary bool
}

// KeyID returns the fingerprint of cookie that [Keyring.List] shows. It
// stretches the cookie (cached per process).
func KeyID(cookie string) string {
	return newRingKey(cookie).id
}

func newRingKey(cookie string) *ringKey {
	m := masterKey(cookie)
	return &ringKey{id: hex.EncodeToString(deriveKey(m, cookiekey.KeyID, nil)[:8]), master: m}
}

// checkCookie validates a cookie given to the keyring or Config.
func checkCookie(cookie string, weak bool) error {
	if cookie == "" {
		return fmt.Errorf("%w: empty key", ErrWeakCookie)
	}
	if n := len(cookie); n < MinCookieLen && !weak {
		return fmt.Errorf("%w: key is %d bytes, need at least %d; generate one with `notp-cli keygen`, or set Config.AllowWeakCookie for tests and demos",
			ErrWeakCookie, n, MinCookieLen)
	}
	return nil
}

// Keyring returns the kernel's keyring. An insecure kernel (no cookie) has
// one with no keys that refuses installs.
func (k *Kernel) Keyring() *Keyring { return k.keys }

// newKeyring returns the keyring of cfg (defaults applied, validated):
// Cookie primary, then Keys.
func newKeyring(k *Kernel, cfg Config) *Keyring {
	r := &Keyring{k: k, weak: cfg.AllowWeakCookie, changed: make(chan struct{})}
	set := &keySet{}
	if cfg.Cookie != "" {
		for _, c := range append([]string{cfg.Cookie}, cfg.Keys...) {
			key := newRingKey(c)
			if set.index(key.id) < 0 {
				set.keys = append(set.keys, key)
			}
		}
	}
	r.set.Store(set)
	return r
}

func (r *Keyring) snapshot() *keySet { return r.set.Load() }

// store replaces the keys and wakes Changed's waiters. r.mu held.
func (r *Keyring) store(s *keySet) {
	r.set.Store(s)
	r.cmu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.cmu.Unlock()
}

// Changed returns a channel closed at the next change of the keyring
// (Install, Use or Remove that changed something). Protocols that key
// themselves from the cookie (gossip's memberlist keyring) wait on it to
// follow the kernel's keys, then read them with DeriveKeys and call
// Changed again.
func (r *Keyring) Changed() <-chan struct{} {
	r.cmu.Lock()
	defer r.cmu.Unlock()
	return r.changed
}

// DeriveKeys returns, for every installed key, the key that
// [Kernel.DeriveKey] gives for label under it, the primary's first: what
// another protocol that derives its key from the cookie installs to
// accept every key the kernel accepts. Nil without keys.
func (r *Keyring) DeriveKeys(label string) [][]byte {
	s := r.snapshot()
	out := make([][]byte, 0, len(s.keys))
	for _, key := range s.keys {
		out = append(out, deriveKey(key.master, labelDerive, []byte(label)))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// List returns the installed keys, the primary first.
func (r *Keyring) List() []KeyInfo {
	s := r.snapshot()
	out := make([]KeyInfo, len(s.keys))
	for i, key := range s.keys {
		out[i] = KeyInfo{ID: key.id, Primary: i == 0}
	}
	return out
}

// Install adds cookie to the accepted keys; the primary is unchanged.
// Installing an installed key is a no-op. It fails with ErrWeakCookie for
// a short cookie (unless Config.AllowWeakCookie), ErrKeyringFull when
// MaxKeys are installed, and ErrInsecure on an insecure kernel.
func (r *Keyring) Install(cookie string) error {
	if err := checkCookie(cookie, r.weak); err != nil {
		return fmt.Errorf("kernel: install key: %w", err)
	}
	key := newRingKey(cookie) // stretches outside the lock
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.snapshot()
	if len(s.keys) == 0 {
		return fmt.Errorf("kernel: install key: %w", ErrInsecure)
	}
	if s.index(key.id) >= 0 {
		return nil
	}
	if len(s.keys) >= MaxKeys {
		return fmt.Errorf("%w: %d keys installed; remove one first", ErrKeyringFull, len(s.keys))
	}
	r.store(&keySet{keys: append(slices.Clone(s.keys), key)})
	r.k.log.Info("key installed", "key_id", key.id)
	return nil
}

// Use makes the installed cookie the primary: the key this node proves
// with from its next connection on. Connections open now keep their keys.
// It fails with ErrUnknownKey when cookie is not installed.
func (r *Keyring) Use(cookie string) error { return r.UseID(KeyID(cookie)) }

// UseID is Use of the installed key whose KeyID is id.
func (r *Keyring) UseID(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.snapshot()
	i := s.index(id)
	if i < 0 {
		return fmt.Errorf("%w: key %s", ErrUnknownKey, id)
	}
	if i == 0 {
		return nil
	}
	keys := append([]*ringKey{s.keys[i]}, slices.Delete(slices.Clone(s.keys), i, i+1)...)
	r.store(&keySet{keys: keys})
	r.k.log.Info("primary key changed", "key_id", id)
	return nil
}

// Remove retires cookie: hellos proven with it are refused from now on,
// and the connections keyed by it are closed without failing calls. This
// node's own links move to a new connection at once and close the old one
// when the calls on it are answered; connections that peers opened are
// closed when their peer does so, or after Config.KeyRetireGrace. Removing
// a key that is not installed is a no-op; the primary cannot be removed
// (ErrPrimaryKey).
func (r *Keyring) Remove(cookie string) error { return r.RemoveID(KeyID(cookie)) }

// RemoveID is Remove of the key whose KeyID is id, so that an operator
// retires a key by the fingerprint List shows, without its cookie.
func (r *Keyring) RemoveID(id string) error {
	r.mu.Lock()
	s := r.snapshot()
	i := s.index(id)
	if i < 0 {
		r.mu.Unlock()
		return nil
	}
	if i == 0 {
		r.mu.Unlock()
		return fmt.Errorf("%w: key %s", ErrPrimaryKey, id)
	}
	old := s.keys[i]
	r.store(&keySet{keys: slices.Delete(slices.Clone(s.keys), i, i+1)})
	r.mu.Unlock()
	r.k.log.Info("key removed", "key_id", id)
	r.k.retireKey(old)
	return nil
}

func (s *keySet) index(id string) int {
	return slices.IndexFunc(s.keys, func(k *ringKey) bool { return k.id == id })
}

// retireKey closes, without failing calls, every connection keyed by key.
func (k *Kernel) retireKey(key *ringKey) {
	k.mu.Lock()
	var victims []*session
	for s := range k.sessions {
		if s.key == key {
			victims = append(victims, s)
		}
	}
	k.mu.Unlock()
	for _, s := range victims {
		if s.outbound {
			if l := k.link(s.peer.ID); l != nil && l.retire(s) {
				continue
			}
		}
		k.retireSession(s)
	}
}

// retireSession closes s once nothing waits on it: no call of this node
// bound to it, nothing unanswered or unwritten, or once the peer closed
// it, or after Config.KeyRetireGrace at the latest. It runs in a tracked
// goroutine and returns at once.
func (k *Kernel) retireSession(s *session) {
	if !k.track() {
		return
	}
	go func() {
		defer k.wg.Done()
		deadline := time.NewTimer(k.cfg.KeyRetireGrace)
		defer deadline.Stop()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-k.done:
				return
			case <-deadline.C:
				s.close(errKeyRemoved)
				return
			case <-tick.C:
			}
			// An inbound connection also carries the peer's calls, which
			// only the peer knows it will still send: the peer moves off
			// it when it removes the key, else the deadline ends it.
			if s.outbound && s.unanswered.Load() == 0 && k.pending.boundTo(s) == 0 && s.idle() {
				s.close(nil)
				return
			}
		}
	}()
}

// errKeyRemoved is why a connection whose key was removed is closed.
var errKeyRemoved = errors.New("kernel: the connection's key was removed")
