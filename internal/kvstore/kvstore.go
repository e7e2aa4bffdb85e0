// Package kvstore is the small durable key-value log the lock and
// semaphore replicas (packages dlm and dsm) keep their state in.
//
// A store is a map of string keys to byte values. [Open] with an empty
// directory gives a map in memory; with a directory it gives the same map
// backed by an append-only log file, "<name>.kv", that every Put and
// Delete is written to and fsynced before it returns, so an acknowledged
// change survives a crash of the process or the machine.
//
// # Log format
//
// The file is a sequence of records, each
//
//	length  uint32 big-endian  (of op+key+value, at most MaxRecord)
//	crc     uint32 big-endian  (CRC-32C of op+key+value)
//	op      byte               (1 = put, 2 = delete)
//	keylen  uvarint
//	key     keylen bytes
//	value   the rest (empty for a delete)
//
// Opening replays the records in order. A torn or corrupt tail (a short
// header, a length past the end or over MaxRecord, a bad checksum, an
// undecodable record) ends the replay and is truncated away: it can only
// be a write that never returned. When the log holds more than twice as
// many records as live keys (and at least compactMin), it is rewritten:
// the live map goes to a temporary file that is fsynced and renamed over
// the log, and the directory is fsynced.
//
// A Store is safe for concurrent use; writes are serialised.
package kvstore

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// MaxRecord bounds one record's op+key+value bytes (1 MiB): a longer one
// is refused by Put and treated as corruption by Open.
const MaxRecord = 1 << 20

// compactMin is the record count below which the log is never compacted.
const compactMin = 1024

const (
	opPut byte = 1
	opDel byte = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("kvstore: closed")

// ErrTooLarge is returned by Put for a record over MaxRecord.
var ErrTooLarge = errors.New("kvstore: record too large")

// Store is a durable (or, without a directory, in-memory) string map.
type Store struct {
	mu      sync.Mutex
	m       map[string][]byte
	f       *os.File // nil in memory
	path    string
	dir     string
	records int // records in the log
	closed  bool
}

// Open opens (creating if needed) the store name in dir, replaying its
// log and truncating a torn tail. dir "" gives an in-memory store.
func Open(dir, name string) (*Store, error) {
	s := &Store{m: map[string][]byte{}}
	if dir == "" {
		return s, nil
	}
	if name == "" || filepath.Base(name) != name {
		return nil, fmt.Errorf("kvstore: invalid name %q", name)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	s.dir, s.path = dir, filepath.Join(dir, name+".kv")
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	good, n, err := replay(bufio.NewReader(f), s.m)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("kvstore: read %s: %w", s.path, err)
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("kvstore: truncate torn tail: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("kvstore: %w", err)
	}
	s.f, s.records = f, n
	return s, nil
}

// replay applies the log's valid records to m and returns the offset
// after the last one and their count. Only an I/O error is an error.
func replay(r io.Reader, m map[string][]byte) (good int64, n int, err error) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return good, n, nil
			}
			return good, n, err
		}
		size := binary.BigEndian.Uint32(hdr[:4])
		if size == 0 || size > MaxRecord {
			return good, n, nil
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(r, body); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return good, n, nil
			}
			return good, n, err
		}
		if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
			return good, n, nil
		}
		op, key, val, err := decodeRecord(body)
		if err != nil {
			return good, n, nil
		}
		if op == opPut {
			m[key] = val
		} else {
			delete(m, key)
		}
		good += int64(8 + size)
		n++
	}
}

// decodeRecord splits a record body (after its checksum was verified).
func decodeRecord(b []byte) (op byte, key string, val []byte, err error) {
	if len(b) < 2 {
		return 0, "", nil, errors.New("kvstore: short record")
	}
	op = b[0]
	if op != opPut && op != opDel {
		return 0, "", nil, fmt.Errorf("kvstore: unknown op %d", op)
	}
	kl, w := binary.Uvarint(b[1:])
	if w <= 0 || kl > uint64(len(b)-1-w) || len(binary.AppendUvarint(nil, kl)) != w {
		return 0, "", nil, errors.New("kvstore: bad key length")
	}
	rest := b[1+w:]
	key, val = string(rest[:kl]), rest[kl:]
	if op == opDel && len(val) != 0 {
		return 0, "", nil, errors.New("kvstore: delete with a value")
	}
	return op, key, append([]byte(nil), val...), nil
}

// encodeRecord returns the framed record.
func encodeRecord(op byte, key string, val []byte) []byte {
	body := make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+len(val))
	body = append(body, op)
	body = binary.AppendUvarint(body, uint64(len(key)))
	body = append(body, key...)
	body = append(body, val...)
	out := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint32(out[:4], uint32(len(body)))
	binary.BigEndian.PutUint32(out[4:8], crc32.Checksum(body, crcTable))
	return append(out, body...)
}

// Get returns the value of key and whether it exists.
func (s *Store) Get(key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Len returns the number of keys.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// Put sets key to val; with a directory it returns once the change is on
// disk.
func (s *Store) Put(key string, val []byte) error {
	return s.write(opPut, key, val)
}

// Delete removes key (a missing key is not an error); with a directory it
// returns once the change is on disk.
func (s *Store) Delete(key string) error {
	return s.write(opDel, key, nil)
}

func (s *Store) write(op byte, key string, val []byte) error {
	if 1+binary.MaxVarintLen64+len(key)+len(val) > MaxRecord {
		return fmt.Errorf("%w: key %d + value %d bytes", ErrTooLarge, len(key), len(val))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.f != nil {
		if _, err := s.f.Write(encodeRecord(op, key, val)); err != nil {
			return fmt.Errorf("kvstore: append: %w", err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("kvstore: sync: %w", err)
		}
		s.records++
	}
	if op == opPut {
		s.m[key] = append([]byte(nil), val...)
	} else {
		delete(s.m, key)
	}
	if s.f != nil && s.records >= compactMin && s.records > 2*len(s.m) {
		return s.compactLocked()
	}
	return nil
}

// compactLocked rewrites the log as one put per live key.
func (s *Store) compactLocked() error {
	tmp, err := os.CreateTemp(s.dir, filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("kvstore: compact: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	w := bufio.NewWriter(tmp)
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := w.Write(encodeRecord(opPut, k, s.m[k])); err != nil {
			tmp.Close()
			return fmt.Errorf("kvstore: compact: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("kvstore: compact: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("kvstore: compact: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		tmp.Close()
		return fmt.Errorf("kvstore: compact: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		tmp.Close()
		return err
	}
	s.f.Close()
	s.f, s.records = tmp, len(keys)
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("kvstore: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("kvstore: sync dir: %w", err)
	}
	return nil
}

// ForEach calls fn for every key in key order with a copy of its value,
// stopping at fn's first error, which it returns.
func (s *Store) ForEach(fn func(key string, val []byte) error) error {
	s.mu.Lock()
	keys := make([]string, 0, len(s.m))
	vals := make(map[string][]byte, len(s.m))
	for k, v := range s.m {
		keys = append(keys, k)
		vals[k] = v
	}
	s.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, append([]byte(nil), vals[k]...)); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the log (writes were already synced). It is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			return fmt.Errorf("kvstore: close: %w", err)
		}
	}
	return nil
}
