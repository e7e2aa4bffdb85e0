package dsm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/internal/replicated"
	"github.com/notp-go/notp/internal/replicated/payload"
	"github.com/notp-go/notp/kernel"
	"github.com/notp-go/notp/table"
)

// Persisted layout, notp's: the limit of a semaphore and its holders under
// two keys, loadable in either order:
//
//	"SEMAPHORES::<id>"        scalar  msgpack n
//	"SEMAPHORE_HOLDERS::<id>" hash    holder -> msgpack hold{start, timeout}
//
// start is the grant's wall-clock time in Unix ms and timeout the TTL in
// ms, so a restarted owner restores each holder with the time it has left.
const (
	prefixSize    = "SEMAPHORES::"
	prefixHolders = "SEMAPHORE_HOLDERS::"
)

// hold is one holder's place in a semaphore.
type hold struct {
	Start   int64 `msgpack:"start"`
	Timeout int64 `msgpack:"timeout"`

	expires time.Time
}

// sem is a semaphore (notp's Semaphore: id, size and holder timers).
type sem struct {
	n       int
	holders map[string]*hold
}

// owner is the semaphores a node holds. It is owned by the genserver's
// actor goroutine (and by tests); nothing in it is locked.
type owner struct {
	sems    map[string]*sem
	st      *table.Table
	now     func() time.Time
	log     *slog.Logger
	maxSems int
	maxSize int

	holders int     // places taken in sems
	gauges  *gauges // where publish copies the sizes; nil in tests
}

// publish copies the owner's sizes to its gauges (for Stats, read on
// other goroutines); the actor calls it after each change.
func (o *owner) publish() {
	if o.gauges != nil {
		o.gauges.sems.Store(int64(len(o.sems)))
		o.gauges.holders.Store(int64(o.holders))
	}
}

func newOwner(st *table.Table, cfg *Config) *owner {
	return &owner{sems: map[string]*sem{}, st: st, now: cfg.Now, log: cfg.Logger,
		maxSems: cfg.MaxSemaphores, maxSize: cfg.MaxSize}
}

func remoteError(code, msg string) error { return &kernel.RemoteError{Code: code, Message: msg} }

func storageError(err error) error { return remoteError(CodeStorage, "dsm: persist: "+err.Error()) }

func notFound(id string) error {
	return remoteError(CodeNotFound, fmt.Sprintf("Semaphore '%s' does not exist.", id))
}

// live returns id's semaphore after dropping its expired holders, or nil.
func (o *owner) live(id string) *sem {
	s := o.sems[id]
	if s == nil {
		return nil
	}
	now := o.now()
	for h, hd := range s.holders {
		if !now.Before(hd.expires) {
			if err := o.st.HDel(prefixHolders+id, h); err != nil {
				o.log.Warn("dsm: drop expired holder", "id", id, "err", err)
			}
			delete(s.holders, h)
			o.holders--
		}
	}
	return s
}

func (o *owner) create(id string, n int) (reply, error) {
	if s := o.live(id); s != nil {
		if s.n == n {
			return reply{OK: true}, nil
		}
		return reply{}, remoteError(CodeExists, fmt.Sprintf("Semaphore '%s' already exist with n equal to %d.", id, s.n))
	}
	if len(o.sems) >= o.maxSems {
		return reply{}, remoteError(CodeFull, fmt.Sprintf("dsm: node full: %d semaphores", o.maxSems))
	}
	if err := o.st.Set(prefixSize+id, encode(n)); err != nil {
		return reply{}, storageError(err)
	}
	o.sems[id] = &sem{n: n, holders: map[string]*hold{}}
	return reply{OK: true}, nil
}

func (o *owner) read(id string) (reply, error) {
	s := o.live(id)
	if s == nil {
		return reply{}, notFound(id)
	}
	return reply{OK: true, N: s.n, Active: len(s.holders)}, nil
}

// destroy deletes the semaphore and its holders (notp left the holders on
// disk, so a reload brought back a semaphore of size 0).
func (o *owner) destroy(id string) (reply, error) {
	if o.sems[id] == nil {
		return reply{OK: true}, nil
	}
	if err := o.drop(id); err != nil {
		return reply{}, err
	}
	return reply{OK: true}, nil
}

// drop forgets id here, on disk first.
func (o *owner) drop(id string) error {
	if err := o.st.Del(prefixHolders + id); err != nil {
		return storageError(err)
	}
	if err := o.st.Del(prefixSize + id); err != nil {
		return storageError(err)
	}
	if s := o.sems[id]; s != nil {
		o.holders -= len(s.holders)
	}
	delete(o.sems, id)
	return nil
}

func (o *owner) post(id, holder string, ttl time.Duration) (reply, error) {
	s := o.live(id)
	switch {
	case s == nil:
		return reply{}, notFound(id)
	case s.holders[holder] != nil:
		return reply{OK: true}, nil // no TTL refresh, as in notp
	case len(s.holders) >= s.n:
		return reply{}, nil
	}
	now := o.now()
	h := &hold{Start: now.UnixMilli(), Timeout: ttl.Milliseconds(), expires: now.Add(ttl)}
	if err := o.st.HSet(prefixHolders+id, holder, encode(h)); err != nil {
		return reply{}, storageError(err)
	}
	s.holders[holder] = h
	o.holders++
	return reply{OK: true}, nil
}

func (o *owner) close(id, holder string) (reply, error) {
	s := o.live(id)
	if s == nil {
		return reply{}, notFound(id)
	}
	if s.holders[holder] == nil {
		return reply{}, nil
	}
	if err := o.st.HDel(prefixHolders+id, holder); err != nil {
		return reply{}, storageError(err)
	}
	delete(s.holders, holder)
	o.holders--
	return reply{OK: true}, nil
}

// snapshot is id's semaphore as a handoff, holders with their time left.
func (o *owner) snapshot(id string) (handoff, bool) {
	s := o.live(id)
	if s == nil {
		return handoff{}, false
	}
	now := o.now()
	h := handoff{ID: id, N: s.n}
	for name, hd := range s.holders {
		if left := hd.expires.Sub(now).Milliseconds(); left > 0 {
			h.Holders = append(h.Holders, handedOff{Holder: name, Left: left})
		}
	}
	return h, true
}

// install merges a semaphore handed over by its previous owner: a new one
// is created as sent; an existing one keeps its n and gains the holders it
// lacks, so a semaphore handed back and forth is never doubled.
func (o *owner) install(h handoff) (reply, error) {
	s := o.live(h.ID)
	if s == nil {
		if len(o.sems) >= o.maxSems {
			return reply{}, remoteError(CodeFull, fmt.Sprintf("dsm: node full: %d semaphores", o.maxSems))
		}
		if err := o.st.Set(prefixSize+h.ID, encode(h.N)); err != nil {
			return reply{}, storageError(err)
		}
		s = &sem{n: h.N, holders: map[string]*hold{}}
		o.sems[h.ID] = s
	}
	now := o.now()
	for _, x := range h.Holders {
		if s.holders[x.Holder] != nil {
			continue
		}
		left := time.Duration(x.Left) * time.Millisecond
		hd := &hold{Start: now.UnixMilli(), Timeout: x.Left, expires: now.Add(left)}
		if err := o.st.HSet(prefixHolders+h.ID, x.Holder, encode(hd)); err != nil {
			return reply{}, storageError(err)
		}
		s.holders[x.Holder] = hd
		o.holders++
	}
	return reply{OK: true}, nil
}

func (o *owner) sweep() {
	for id := range o.sems {
		o.live(id)
	}
}

// load rebuilds the semaphores from the table. Sizes and holders are
// gathered first and joined after, so their order does not matter; holders
// without a size (a destroy interrupted between its two deletes) and
// undecodable or expired entries are dropped.
func (o *owner) load(ctx context.Context) error {
	now := o.now()
	sizes := map[string]int{}
	holders := map[string]map[string][]byte{}
	var junk []string
	err := o.st.ForEach(ctx, func(key string, v table.Value) error {
		switch {
		case strings.HasPrefix(key, prefixSize) && v.Kind == table.KindScalar:
			var n int
			id := key[len(prefixSize):]
			if msgpackcheck.Unmarshal(v.Bytes, &n) != nil || n < 1 || n > o.maxSize || payload.ValidName("id", id) != nil {
				junk = append(junk, key)
				return nil
			}
			sizes[id] = n
		case strings.HasPrefix(key, prefixHolders) && v.Kind == table.KindHash:
			holders[key[len(prefixHolders):]] = v.Fields
		default:
			junk = append(junk, key)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("dsm: load: %w", err)
	}
	for id, n := range sizes {
		o.sems[id] = &sem{n: n, holders: map[string]*hold{}}
	}
	for id, fields := range holders {
		s := o.sems[id]
		if s == nil {
			junk = append(junk, prefixHolders+id)
			continue
		}
		for name, b := range fields {
			var h hold
			if msgpackcheck.Unmarshal(b, &h) != nil || payload.ValidTimeout(h.Timeout) != nil || payload.ValidName("holder", name) != nil {
				o.forget(o.st.HDel(prefixHolders+id, name))
				continue
			}
			expires, live := replicated.Expiry(h.Start, h.Timeout, now)
			if !live {
				o.forget(o.st.HDel(prefixHolders+id, name))
				continue
			}
			h.expires = expires
			s.holders[name] = &h
			o.holders++
		}
	}
	for _, k := range junk {
		o.log.Warn("dsm: load: dropping an entry that is no semaphore", "key", k)
		o.forget(o.st.Del(k))
	}
	return nil
}

func (o *owner) forget(err error) {
	if err != nil {
		o.log.Warn("dsm: drop stale entry", "err", err)
	}
}
