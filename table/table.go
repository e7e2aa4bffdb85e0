package table

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Table is a key/value table of scalars, sets and hashes, held in memory
// and, when its Config has a Dir, persisted in a log and a snapshot. Its
// methods are safe for concurrent use.
type Table struct {
	cfg Config

	mu     sync.RWMutex
	data   state
	closed bool
	failed error // sticky disk error: writes are refused once set

	// Durable tables only; nil log means in-memory.
	log *durable
}

// Open opens the table cfg describes: an in-memory table when cfg.Dir is
// empty, otherwise the durable table in cfg.Dir, recovered from its files
// (created if there are none).
func Open(cfg Config) (*Table, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Table{cfg: cfg.withDefaults(), data: state{}}
	if cfg.Dir == "" {
		return t, nil
	}
	d, err := openDurable(&t.cfg, t.data, &t.mu, t.fail)
	if err != nil {
		return nil, err
	}
	t.log = d
	return t, nil
}

// Get returns a copy of key's scalar value. It fails with ErrNotFound if
// key is absent and ErrWrongType if it holds a set or hash.
func (t *Table) Get(key string) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, err := t.existing(opGet, key, KindScalar)
	if err != nil {
		return nil, err
	}
	return slices.Clone(e.scalar), nil
}

// SMember reports whether the set at key holds member; an absent key is
// an empty set. It fails with ErrWrongType if key holds a scalar or hash.
func (t *Table) SMember(key, member string) (bool, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, err := t.lookup(opSMember, key, KindSet)
	if err != nil {
		return false, err
	}
	return e.hasMember(member), nil
}

// HGet returns a copy of field's value in the hash at key. It fails with
// ErrNotFound if the key or field is absent and ErrWrongType if key holds
// a scalar or set.
func (t *Table) HGet(key, field string) ([]byte, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, err := t.existing(opHGet, key, KindHash)
	if err != nil {
		return nil, err
	}
	v, ok := e.hash[field]
	if !ok {
		return nil, fmt.Errorf("%w: field %q of key %q", ErrNotFound, field, key)
	}
	return slices.Clone(v), nil
}

// lookup returns key's entry (nil if absent) after checking its kind.
// t.mu is held.
func (t *Table) lookup(op opcode, key string, k Kind) (*entry, error) {
	if t.closed {
		return nil, ErrClosed
	}
	return t.data.get(op, key, k)
}

// existing is lookup that fails with ErrNotFound when key is absent.
func (t *Table) existing(op opcode, key string, k Kind) (*entry, error) {
	e, err := t.lookup(op, key, k)
	if err == nil && e == nil {
		err = fmt.Errorf("%w: key %q", ErrNotFound, key)
	}
	return e, err
}

// Set stores value (copied) as key's scalar, replacing whatever key held.
func (t *Table) Set(key string, value []byte) error {
	if err := t.checkValue(value); err != nil {
		return err
	}
	return t.write(&record{op: opSet, key: key, val: slices.Clone(value)})
}

// SSet adds member to the set at key, creating the set if key is absent.
// It fails with ErrWrongType if key holds a scalar or hash.
func (t *Table) SSet(key, member string) error {
	return t.write(&record{op: opSSet, key: key, sub: member})
}

// SDel removes member from the set at key; removing the last member
// deletes the key. It fails with ErrWrongType if key holds a scalar or
// hash.
func (t *Table) SDel(key, member string) error {
	return t.write(&record{op: opSDel, key: key, sub: member})
}

// HSet sets field to value (copied) in the hash at key, creating the hash
// if key is absent. It fails with ErrWrongType if key holds a scalar or
// set.
func (t *Table) HSet(key, field string, value []byte) error {
	if err := t.checkValue(value); err != nil {
		return err
	}
	return t.write(&record{op: opHSet, key: key, sub: field, val: slices.Clone(value)})
}

// HDel removes field from the hash at key; removing the last field
// deletes the key. It fails with ErrWrongType if key holds a scalar or
// set.
func (t *Table) HDel(key, field string) error {
	return t.write(&record{op: opHDel, key: key, sub: field})
}

// Del deletes key, whatever it holds. Deleting an absent key succeeds.
func (t *Table) Del(key string) error {
	return t.write(&record{op: opDel, key: key})
}

// Clear deletes every key.
func (t *Table) Clear() error {
	return t.write(&record{op: opClear})
}

func (t *Table) checkValue(v []byte) error {
	if len(v) > t.cfg.MaxValueBytes {
		return fmt.Errorf("%w: value of %d bytes exceeds MaxValueBytes %d", ErrTooLarge, len(v), t.cfg.MaxValueBytes)
	}
	return nil
}

// write applies r in memory and, for a durable table, logs it as the
// Sync policy says. An operation that fails or changes nothing is not
// logged.
func (t *Table) write(r *record) error {
	if len(r.key) > t.cfg.MaxKeyBytes || len(r.sub) > t.cfg.MaxKeyBytes {
		return fmt.Errorf("%w: key or member of %d bytes exceeds MaxKeyBytes %d",
			ErrTooLarge, max(len(r.key), len(r.sub)), t.cfg.MaxKeyBytes)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if t.failed != nil {
		t.mu.Unlock()
		return t.failed
	}
	changed, err := t.data.apply(r)
	if err != nil || !changed || t.log == nil {
		t.mu.Unlock()
		return err
	}
	b, wait := t.log.append(r)
	t.mu.Unlock()
	if !wait {
		t.log.kick()
		return nil
	}
	return t.log.commit(b)
}

// fail makes err sticky: every later write returns it. It is called by
// the log writer when the disk fails, since the memory then holds changes
// the log may not.
func (t *Table) fail(err error) {
	t.mu.Lock()
	if t.failed == nil {
		t.failed = err
	}
	t.mu.Unlock()
}

// ForEach calls fn with each key and a copy of its value, in key order,
// until fn returns an error or ctx is done, and returns that error. It
// holds no lock while fn runs, so fn may use the table; a key changed
// during the walk is seen as it is when its turn comes, and a key deleted
// before its turn is skipped.
func (t *Table) ForEach(ctx context.Context, fn func(key string, v Value) error) error {
	t.mu.RLock()
	if t.closed {
		t.mu.RUnlock()
		return ErrClosed
	}
	keys := slices.Sorted(maps.Keys(t.data))
	t.mu.RUnlock()
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		t.mu.RLock()
		if t.closed {
			t.mu.RUnlock()
			return ErrClosed
		}
		e, ok := t.data[k]
		var v Value
		if ok {
			v = e.value()
		}
		t.mu.RUnlock()
		if !ok {
			continue
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Len returns the number of keys.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.data)
}

// Close flushes and fsyncs a durable table's log, waits for a running
// compaction to stop (an unfinished one resumes at the next Open) and
// releases the files. Later calls on the table fail with ErrClosed;
// Close itself is idempotent and returns the first disk error the table
// met, if any.
func (t *Table) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	if t.log == nil {
		return nil
	}
	err := t.log.close()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.failed != nil {
		return t.failed
	}
	return err
}
