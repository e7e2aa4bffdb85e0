package dlm

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/notp-go/notp/internal/kvstore"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/kernel"
)

// Persisted layout in the replica's store. A write lock is one key, a
// read lock one key per holder, and the fencing counter one key:
//
//	"w\x00<id>"            -> msgpack hold{holder, start, timeout, token}
//	"r\x00<id>\x00<holder>" -> msgpack hold{start, timeout}
//	"counter"               -> uint64 big-endian
//
// start is the grant's wall-clock time in Unix ms and timeout its TTL in
// ms, so a restarted replica restores each lock with the time it has left.
const (
	prefixWrite = "w\x00"
	prefixRead  = "r\x00"
	keyCounter  = "counter"
)

// hold is one holder's grant.
type hold struct {
	Holder  string `msgpack:"holder,omitempty"`
	Start   int64  `msgpack:"start"`
	Timeout int64  `msgpack:"timeout"`
	Token   uint64 `msgpack:"token,omitempty"`

	expires time.Time // in memory: when the grant ends
}

// lock is one ID's state on a replica: a write hold or read holds, never
// both (notp's Lock with its type, id and timers).
type lock struct {
	write *hold
	read  map[string]*hold
}

// replica is the state of one node's DLM replica. It is owned by the
// genserver's actor goroutine (and by tests); nothing in it is locked.
type replica struct {
	locks   map[string]*lock
	counter uint64 // the largest fencing token recorded here
	st      *kvstore.Store
	now     func() time.Time
	log     *slog.Logger
	maxLock int
	maxHold int
}

func newReplica(st *kvstore.Store, cfg *Config) *replica {
	return &replica{locks: map[string]*lock{}, st: st, now: cfg.Now, log: cfg.Logger,
		maxLock: cfg.MaxLocks, maxHold: cfg.MaxHolders}
}

func writeKey(id string) string        { return prefixWrite + id }
func readKey(id, holder string) string { return prefixRead + id + "\x00" + holder }

func storageError(err error) error {
	return &kernel.RemoteError{Code: CodeStorage, Message: "dlm: persist: " + err.Error()}
}

func fullError(what string) error {
	return &kernel.RemoteError{Code: CodeFull, Message: "dlm: replica full: " + what}
}

// live returns id's lock after dropping its expired holds, or nil.
func (r *replica) live(id string) *lock {
	l := r.locks[id]
	if l == nil {
		return nil
	}
	now := r.now()
	if l.write != nil && !now.Before(l.write.expires) {
		r.forget(writeKey(id))
		l.write = nil
	}
	for h, hd := range l.read {
		if !now.Before(hd.expires) {
			r.forget(readKey(id, h))
			delete(l.read, h)
		}
	}
	if l.write == nil && len(l.read) == 0 {
		delete(r.locks, id)
		return nil
	}
	return l
}

// forget deletes an expired key; a failure only leaves it for the next
// load, which drops it as expired.
func (r *replica) forget(key string) {
	if err := r.st.Delete(key); err != nil {
		r.log.Warn("dlm: drop expired lock", "err", err)
	}
}

func (r *replica) newHold(holder string, ttl time.Duration) *hold {
	now := r.now()
	return &hold{Holder: holder, Start: now.UnixMilli(), Timeout: ttl.Milliseconds(), expires: now.Add(ttl)}
}

// rlock grants a shared lock unless a write lock is held. A holder that
// already holds it is granted again without extending its TTL.
func (r *replica) rlock(id, holder string, ttl time.Duration) (reply, error) {
	l := r.live(id)
	if l != nil && l.write != nil {
		return reply{}, nil
	}
	if l != nil && l.read[holder] != nil {
		return reply{OK: true}, nil
	}
	if l == nil && len(r.locks) >= r.maxLock {
		return reply{}, fullError(fmt.Sprintf("%d locks", r.maxLock))
	}
	if l != nil && len(l.read) >= r.maxHold {
		return reply{}, fullError(fmt.Sprintf("%d holders of %q", r.maxHold, id))
	}
	h := r.newHold("", ttl)
	if err := r.st.Put(readKey(id, holder), encode(h)); err != nil {
		return reply{}, storageError(err)
	}
	if l == nil {
		l = &lock{read: map[string]*hold{}}
		r.locks[id] = l
	}
	l.read[holder] = h
	return reply{OK: true}, nil
}

// wlock grants an exclusive lock when no lock (of any holder, this one
// included) is held, and reports the replica's fencing counter.
func (r *replica) wlock(id, holder string, ttl time.Duration) (reply, error) {
	if r.live(id) != nil {
		return reply{}, nil
	}
	if len(r.locks) >= r.maxLock {
		return reply{}, fullError(fmt.Sprintf("%d locks", r.maxLock))
	}
	h := r.newHold(holder, ttl)
	if err := r.st.Put(writeKey(id), encode(h)); err != nil {
		return reply{}, storageError(err)
	}
	r.locks[id] = &lock{write: h}
	return reply{OK: true, Token: r.counter}, nil
}

// commit records token as id's fencing token while holder still holds
// its write lock here, raising the counter to it; it is on disk before
// the reply.
func (r *replica) commit(id, holder string, token uint64) (reply, error) {
	l := r.live(id)
	if l == nil || l.write == nil || l.write.Holder != holder {
		return reply{}, nil
	}
	c := max(r.counter, token)
	if err := r.st.Put(keyCounter, binary.BigEndian.AppendUint64(nil, c)); err != nil {
		return reply{}, storageError(err)
	}
	r.counter = c
	h := *l.write
	h.Token = token
	if err := r.st.Put(writeKey(id), encode(&h)); err != nil {
		return reply{}, storageError(err)
	}
	l.write.Token = token
	return reply{OK: true, Token: c}, nil
}

// runlock releases holder's read lock: not-ok without a read lock or
// without this holder.
func (r *replica) runlock(id, holder string) (reply, error) {
	l := r.live(id)
	if l == nil || l.write != nil || l.read[holder] == nil {
		return reply{}, nil
	}
	if err := r.st.Delete(readKey(id, holder)); err != nil {
		return reply{}, storageError(err)
	}
	delete(l.read, holder)
	if len(l.read) == 0 {
		delete(r.locks, id)
	}
	return reply{OK: true}, nil
}

// wunlock releases holder's write lock: not-ok without a write lock or
// for another holder.
func (r *replica) wunlock(id, holder string) (reply, error) {
	l := r.live(id)
	if l == nil || l.write == nil || l.write.Holder != holder {
		return reply{}, nil
	}
	if err := r.st.Delete(writeKey(id)); err != nil {
		return reply{}, storageError(err)
	}
	delete(r.locks, id)
	return reply{OK: true}, nil
}

// sweep drops every expired hold.
func (r *replica) sweep() {
	for id := range r.locks {
		r.live(id)
	}
}

// load rebuilds the locks and the counter from the store, each lock with
// the time it has left; expired and undecodable entries are dropped.
func (r *replica) load() error {
	now := r.now()
	var drop []string
	err := r.st.ForEach(func(key string, val []byte) error {
		if key == keyCounter {
			if len(val) != 8 {
				return fmt.Errorf("dlm: load: counter of %d bytes", len(val))
			}
			r.counter = binary.BigEndian.Uint64(val)
			return nil
		}
		id, holder, write, ok := parseKey(key)
		var h hold
		if ok {
			ok = msgpackcheck.Unmarshal(val, &h) == nil && h.Timeout > 0 && h.Timeout <= MaxTTL.Milliseconds() &&
				(!write || validName("holder", h.Holder) == nil)
		}
		if !ok {
			r.log.Warn("dlm: load: dropping undecodable entry", "key", key)
			drop = append(drop, key)
			return nil
		}
		left := time.UnixMilli(h.Start).Add(time.Duration(h.Timeout) * time.Millisecond).Sub(now)
		if left <= 0 {
			drop = append(drop, key)
			return nil
		}
		h.expires = now.Add(min(left, time.Duration(h.Timeout)*time.Millisecond))
		l := r.locks[id]
		if l == nil {
			l = &lock{}
			r.locks[id] = l
		}
		if write {
			l.write = &h
		} else {
			if l.read == nil {
				l.read = map[string]*hold{}
			}
			h.Holder = ""
			l.read[holder] = &h
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range drop {
		r.forget(k)
	}
	// A write and read holds of one ID cannot both be granted; a store
	// that has both (written by hand) keeps the write lock.
	for id, l := range r.locks {
		if l.write != nil && len(l.read) > 0 {
			for h := range l.read {
				r.forget(readKey(id, h))
			}
			l.read = nil
		}
	}
	return nil
}

// parseKey splits a lock key; write locks' holder is in the value.
func parseKey(key string) (id, holder string, write, ok bool) {
	switch {
	case strings.HasPrefix(key, prefixWrite):
		id = key[len(prefixWrite):]
		return id, "", true, validName("id", id) == nil
	case strings.HasPrefix(key, prefixRead):
		id, holder, found := strings.Cut(key[len(prefixRead):], "\x00")
		return id, holder, false, found && validName("id", id) == nil && validName("holder", holder) == nil
	}
	return "", "", false, false
}
