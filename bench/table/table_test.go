// Package table_test compares durable writes per second of notp's table
// (SyncAlways, group commit) with go.etcd.io/bbolt doing one Update per
// write and db.Batch, with 1 and 64 concurrent writers, in one run:
//
//	cd bench && go test -run '^$' -bench . -count 3 ./table/
//
// Every write stores a 64-byte value under a new key and returns only once
// it is fsynced.
package table_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/notp-go/notp/table"
	bolt "go.etcd.io/bbolt"
)

// store is one system under test: write is called concurrently.
type store interface {
	write(key string, val []byte) error
	close() error
}

type notpStore struct{ t *table.Table }

func (s notpStore) write(k string, v []byte) error { return s.t.Set(k, v) }
func (s notpStore) close() error                   { return s.t.Close() }

var bucket = []byte("b")

type boltStore struct {
	db    *bolt.DB
	batch bool
}

func (s boltStore) write(k string, v []byte) error {
	fn := func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(k), v) }
	if s.batch {
		return s.db.Batch(fn)
	}
	return s.db.Update(fn)
}
func (s boltStore) close() error { return s.db.Close() }

func openNotp(dir string) (store, error) {
	t, err := table.Open(table.Config{Dir: dir, Name: "bench", Sync: table.SyncAlways})
	return notpStore{t}, err
}

func openBolt(batch bool) func(string) (store, error) {
	return func(dir string) (store, error) {
		db, err := bolt.Open(filepath.Join(dir, "bench.db"), 0o600, nil)
		if err != nil {
			return nil, err
		}
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(bucket)
			return err
		})
		return boltStore{db: db, batch: batch}, err
	}
}

func BenchmarkDurableWrites(b *testing.B) {
	systems := []struct {
		name string
		open func(dir string) (store, error)
	}{
		{"notp-table", openNotp},
		{"bbolt-update", openBolt(false)},
		{"bbolt-batch", openBolt(true)},
	}
	for _, writers := range []int{1, 64} {
		for _, sys := range systems {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, sys.name), func(b *testing.B) {
				s, err := sys.open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.close()
				runWriters(b, s, writers)
			})
		}
	}
}

// runWriters shares b.N writes among the writers and reports writes/s.
func runWriters(b *testing.B, s store, writers int) {
	val := make([]byte, 64)
	per := (b.N + writers - 1) / writers
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if err := s.write(fmt.Sprintf("w%02d:%09d", w, i), val); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "writes/s")
}

// The harness runs: every system stores what it is given and reads it
// back after reopening.
func TestSystemsPersist(t *testing.T) {
	for name, open := range map[string]func(string) (store, error){
		"notp-table": openNotp, "bbolt-update": openBolt(false), "bbolt-batch": openBolt(true),
	} {
		dir := t.TempDir()
		s, err := open(dir)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					if err := s.write(fmt.Sprintf("%d/%d", w, i), []byte("v")); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		if err := s.close(); err != nil {
			t.Fatal(err)
		}
		if n := count(t, name, dir); n != 100 {
			t.Errorf("%s: %d keys after reopen, want 100", name, n)
		}
	}
}

func count(t *testing.T, name, dir string) int {
	if name == "notp-table" {
		tb, err := table.Open(table.Config{Dir: dir, Name: "bench"})
		if err != nil {
			t.Fatal(err)
		}
		defer tb.Close()
		return tb.Len()
	}
	db, err := bolt.Open(filepath.Join(dir, "bench.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	return n
}
