package conflux

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Storage is where a group keeps its Raft log, metadata (term, vote) and
// snapshots: [InMemory] or [OnDisk].
type Storage interface {
	open(name string, logOut io.Writer) (*stores, error)
}

// stores are the opened parts of a Storage.
type stores struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	close  func() error
}

// InMemory keeps everything in memory: nothing survives the process. A
// Store started again with the same InMemory value (after Stop) finds its
// log, term and snapshots as it left them, like a process restarting from
// disk; tests use that to crash and restart nodes.
func InMemory() Storage { return &memStorage{groups: map[string]*stores{}} }

type memStorage struct {
	mu     sync.Mutex
	groups map[string]*stores
}

func (m *memStorage) open(name string, _ io.Writer) (*stores, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.groups[name]; s != nil {
		return s, nil
	}
	mem := raft.NewInmemStore()
	s := &stores{logs: mem, stable: mem, snaps: raft.NewInmemSnapshotStore(), close: func() error { return nil }}
	m.groups[name] = s
	return s, nil
}

// OnDisk keeps a group's log and metadata in dir/<name>/raft.db (bbolt,
// fsynced on every append batch) behind an in-memory cache of the last
// 512 entries, and its snapshots (the last 2) in dir/<name>/snapshots. A
// Store restarted on the same dir resumes from them. dir is created when
// missing.
func OnDisk(dir string) Storage { return diskStorage{dir: dir} }

type diskStorage struct{ dir string }

// logCacheSize is how many recent entries OnDisk serves from memory.
const logCacheSize = 512

func (d diskStorage) open(name string, logOut io.Writer) (*stores, error) {
	dir := filepath.Join(d.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("conflux: storage: %w", err)
	}
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("conflux: storage: open log: %w", err)
	}
	cache, err := raft.NewLogCache(logCacheSize, bolt)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("conflux: storage: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStore(dir, 2, logOut)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("conflux: storage: open snapshots: %w", err)
	}
	return &stores{logs: cache, stable: bolt, snaps: snaps, close: bolt.Close}, nil
}
