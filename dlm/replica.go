package dlm

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"time"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
)

// Persisted layout in the replica's table, notp's: a write lock is a
// scalar under its ID, a read lock a hash under its ID of holder -> hold,
// and the fencing counter is a scalar under a key no ID can be (IDs have
// no NUL):
//
//	<id>          scalar  msgpack hold{holder, start, timeout, token}
//	<id>          hash    holder -> msgpack hold{start, timeout}
//	"\x00counter"  scalar  uint64 big-endian
//
// start is the grant's wall-clock time in Unix ms and timeout its TTL in
// ms, so a restarted replica restores each lock with the time it has left.
const keyCounter = "\x00counter"

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
	st      *table.Table
	now     func() time.Time
	log     *slog.Logger
	maxLock int
	maxHold int
}

func newReplica(st *table.Table, cfg *Config) *replica {
	return &replica{locks: map[string]*lock{}, st: st, now: cfg.Now, log: cfg.Logger,
		maxLock: cfg.MaxLocks, maxHold: cfg.MaxHolders}
}

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
		r.forget(r.st.Del(id))
		l.write = nil
	}
	for h, hd := range l.read {
		if !now.Before(hd.expires) {
			r.forget(r.st.HDel(id, h))
			delete(l.read, h)
		}
	}
	if l.write == nil && len(l.read) == 0 {
		delete(r.locks, id)
		return nil
	}
	return l
}

// forget logs a failed deletion of an expired hold; it only leaves the
// hold for the next load, which drops it as expired.
func (r *replica) forget(err error) {
	if err != nil {
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
	if err := r.st.HSet(id, holder, encode(h)); err != nil {
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
	if err := r.st.Set(id, encode(h)); err != nil {
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
	if err := r.st.Set(keyCounter, binary.BigEndian.AppendUint64(nil, c)); err != nil {
		return reply{}, storageError(err)
	}
	r.counter = c
	h := *l.write
	h.Token = token
	if err := r.st.Set(id, encode(&h)); err != nil {
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
	if err := r.st.HDel(id, holder); err != nil {
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
	if err := r.st.Del(id); err != nil {
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

// load rebuilds the locks and the counter from the table, each lock with
// the time it has left; expired and undecodable holds are dropped.
func (r *replica) load(ctx context.Context) error {
	now := r.now()
	var dropKeys []string
	var dropFields [][2]string
	restore := func(id, holder string, val []byte, write bool) *hold {
		var h hold
		if msgpackcheck.Unmarshal(val, &h) != nil || payload.ValidTimeout(h.Timeout) != nil ||
			(write && payload.ValidName("holder", h.Holder) != nil) || (!write && payload.ValidName("holder", holder) != nil) {
			r.log.Warn("dlm: load: dropping undecodable lock", "id", id)
			return nil
		}
		expires, live := replicated.Expiry(h.Start, h.Timeout, now)
		if !live {
			return nil
		}
		h.expires = expires
		return &h
	}
	err := r.st.ForEach(ctx, func(key string, v table.Value) error {
		if key == keyCounter {
			if v.Kind != table.KindScalar || len(v.Bytes) != 8 {
				return fmt.Errorf("dlm: load: counter is not 8 bytes")
			}
			r.counter = binary.BigEndian.Uint64(v.Bytes)
			return nil
		}
		if payload.ValidName("id", key) != nil {
			r.log.Warn("dlm: load: dropping a key that is no lock ID")
			dropKeys = append(dropKeys, key)
			return nil
		}
		switch v.Kind {
		case table.KindScalar:
			if h := restore(key, "", v.Bytes, true); h != nil {
				r.locks[key] = &lock{write: h}
			} else {
				dropKeys = append(dropKeys, key)
			}
		case table.KindHash:
			l := &lock{read: map[string]*hold{}}
			for holder, val := range v.Fields {
				if h := restore(key, holder, val, false); h != nil {
					h.Holder = ""
					l.read[holder] = h
				} else {
					dropFields = append(dropFields, [2]string{key, holder})
				}
			}
			if len(l.read) > 0 {
				r.locks[key] = l
			}
		default:
			dropKeys = append(dropKeys, key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range dropKeys {
		r.forget(r.st.Del(k))
	}
	for _, f := range dropFields {
		r.forget(r.st.HDel(f[0], f[1]))
	}
	return nil
}
