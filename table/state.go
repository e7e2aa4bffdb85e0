package table

import (
	"maps"
	"slices"
)

// Kind is the type of value a key holds.
type Kind uint8

// The kinds of value. A key keeps its kind until it is deleted; an
// operation of another kind fails with ErrWrongType.
const (
	KindScalar Kind = iota + 1 // a byte string: Set, Get
	KindSet                    // a set of strings: SSet, SDel, SMember
	KindHash                   // fields to byte strings: HSet, HDel, HGet
)

// String returns the kind's name as type errors spell it.
func (k Kind) String() string {
	switch k {
	case KindScalar:
		return "scalar"
	case KindSet:
		return "set"
	case KindHash:
		return "hash"
	}
	return "unknown"
}

// Value is a copy of one key's value, handed to ForEach. The caller owns
// it: changing it changes nothing in the table.
type Value struct {
	Kind    Kind
	Bytes   []byte            // KindScalar: the value
	Members []string          // KindSet: the members, sorted
	Fields  map[string][]byte // KindHash: the fields and their values
}

// entry is a key's live value; only the field of its kind is set.
type entry struct {
	kind   Kind
	scalar []byte
	set    map[string]struct{}
	hash   map[string][]byte
}

// value returns a copy of e that shares nothing with it.
func (e *entry) value() Value {
	v := Value{Kind: e.kind}
	switch e.kind {
	case KindScalar:
		v.Bytes = slices.Clone(e.scalar)
	case KindSet:
		v.Members = slices.Sorted(maps.Keys(e.set))
	case KindHash:
		v.Fields = make(map[string][]byte, len(e.hash))
		for f, b := range e.hash {
			v.Fields[f] = slices.Clone(b)
		}
	}
	return v
}

// state is the table's contents. It is not safe for concurrent use.
type state map[string]*entry

// apply performs r. It reports whether anything changed; a type error
// changes nothing. r.val is stored as is, so the caller hands over a
// buffer nothing else writes.
func (s state) apply(r *record) (bool, error) {
	switch r.op {
	case opSet:
		if e := s[r.key]; e != nil && e.kind == KindScalar {
			e.scalar = r.val // overwrite in place: no new entry
		} else {
			s[r.key] = &entry{kind: KindScalar, scalar: r.val}
		}
		return true, nil
	case opDel:
		_, ok := s[r.key]
		delete(s, r.key)
		return ok, nil
	case opClear:
		changed := len(s) > 0
		clear(s)
		return changed, nil
	case opSSet, opSDel:
		return s.applySet(r)
	case opHSet, opHDel:
		return s.applyHash(r)
	}
	return false, errBadRecord
}

// get returns key's entry, nil if absent, failing with a type error when
// it holds a kind other than k.
func (s state) get(op opcode, key string, k Kind) (*entry, error) {
	e := s[key]
	if e != nil && e.kind != k {
		return nil, typeError(op, key, e.kind)
	}
	return e, nil
}

func (s state) applySet(r *record) (bool, error) {
	e, err := s.get(r.op, r.key, KindSet)
	if err != nil {
		return false, err
	}
	if r.op == opSDel {
		return e != nil && deleteSub(s, r.key, e.set, r.sub), nil
	}
	if e == nil {
		e = &entry{kind: KindSet, set: make(map[string]struct{}, 1)}
		s[r.key] = e
	}
	if _, ok := e.set[r.sub]; ok {
		return false, nil
	}
	e.set[r.sub] = struct{}{}
	return true, nil
}

func (s state) applyHash(r *record) (bool, error) {
	e, err := s.get(r.op, r.key, KindHash)
	if err != nil {
		return false, err
	}
	if r.op == opHDel {
		return e != nil && deleteSub(s, r.key, e.hash, r.sub), nil
	}
	if e == nil {
		e = &entry{kind: KindHash, hash: make(map[string][]byte, 1)}
		s[r.key] = e
	}
	e.hash[r.sub] = r.val
	return true, nil
}

// deleteSub deletes sub from m, the set or hash of key's entry, and the
// entry once it is empty (an empty set or hash is no key). It reports
// whether sub was there.
func deleteSub[V any](s state, key string, m map[string]V, sub string) bool {
	if _, ok := m[sub]; !ok {
		return false
	}
	delete(m, sub)
	if len(m) == 0 {
		delete(s, key)
	}
	return true
}

// hasMember reports whether the set e (nil meaning empty) holds m.
func (e *entry) hasMember(m string) bool {
	if e == nil {
		return false
	}
	_, ok := e.set[m]
	return ok
}

// appendSnapshot appends the records that rebuild e under key.
func appendSnapshot(dst []byte, key string, e *entry) ([]byte, int) {
	switch e.kind {
	case KindScalar:
		return appendRecord(dst, &record{op: opSet, key: key, val: e.scalar}), 1
	case KindSet:
		for m := range e.set {
			dst = appendRecord(dst, &record{op: opSSet, key: key, sub: m})
		}
		return dst, len(e.set)
	case KindHash:
		for f, v := range e.hash {
			dst = appendRecord(dst, &record{op: opHSet, key: key, sub: f, val: v})
		}
		return dst, len(e.hash)
	}
	return dst, 0
}
