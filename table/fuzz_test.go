package table

import (
	"bytes"
	"errors"
	"io"
	"os"
	"reflect"
	"testing"
)

// seedLog returns a few framed records.
func seedLog() []byte {
	var b []byte
	for _, r := range []record{
		{op: opSet, key: "k", val: []byte("v")},
		{op: opSSet, key: "s", sub: "m"},
		{op: opHSet, key: "h", sub: "f", val: []byte{0, 1}},
		{op: opHDel, key: "h", sub: "f"},
		{op: opSDel, key: "s", sub: "m"},
		{op: opDel, key: "k"},
		{op: opClear},
	} {
		b = appendRecord(b, &r)
	}
	return b
}

// Record decoding never panics, never reads past its input, and every
// record it accepts encodes to a record that decodes to the same.
func FuzzDecodeRecord(f *testing.F) {
	log := seedLog()
	f.Add(log)
	f.Add(log[:len(log)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(appendRecord(nil, &record{op: opSet, key: string(make([]byte, 200))}))
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := recordReader{r: bytes.NewReader(data), limit: int64(len(data))}
		for {
			r, err := rr.next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, errBadRecord) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				break
			}
			if rr.offset > int64(len(data)) {
				t.Fatalf("offset %d past the %d input bytes", rr.offset, len(data))
			}
			enc := appendRecord(nil, &r)
			back := recordReader{r: bytes.NewReader(enc), limit: int64(len(enc))}
			r2, err := back.next()
			if err != nil || !reflect.DeepEqual(normal(r), normal(r2)) {
				t.Fatalf("round trip: %+v -> %+v, %v", r, r2, err)
			}
		}
	})
}

// normal makes empty and nil values compare equal.
func normal(r record) record {
	if len(r.val) == 0 {
		r.val = nil
	}
	return r
}

// Opening a table directory whose logs hold arbitrary bytes never panics
// and fails at most with ErrCorrupt (for log generations out of order);
// a table that opens takes writes and reopens to the same contents.
// Each fuzz worker reuses one directory, its files rewritten per input,
// rather than making and removing a directory per input.
func FuzzOpenLog(f *testing.F) {
	hdr := appendLogHeader(nil, 1)
	f.Add(append(bytes.Clone(hdr), seedLog()...), []byte{})
	f.Add(append(bytes.Clone(hdr), seedLog()[:20]...), []byte{})
	f.Add([]byte("NTPTLOG1"), append(appendLogHeader(nil, 2), 1, 2, 3))
	f.Add(append(appendLogHeader(nil, 3), seedLog()...), append(appendLogHeader(nil, 2), seedLog()...))
	d := tableDir{cfg: Config{Dir: f.TempDir(), Name: "f", Sync: SyncNever, WriteThreshold: -1, AutoSave: -1}}
	cfg := d.cfg
	f.Fuzz(func(t *testing.T, latest, prev []byte) {
		d.reset(t, latest, prev)
		tb, err := Open(cfg)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		must(t, tb.Set("after", []byte("x")))
		want := dump(t, tb)
		must(t, tb.Close())
		tb, err = Open(cfg)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer tb.Close()
		if got := dump(t, tb); !equalMaps(got, want) {
			t.Fatalf("reopen: %v, want %v", got, want)
		}
	})
}

// tableDir is a fuzz worker's table directory, its files rewritten for
// each input. With WriteThreshold and AutoSave off no compaction runs, so
// the table never writes a snapshot or a PREV log: the files are the live
// log, the PREV log an input brings, and the lock file (no data).
type tableDir struct {
	cfg     Config
	hasPrev bool // a PREV log may be left from the previous input
}

// reset leaves the directory as a fresh one holding only the live log
// latest and, when prev is not empty, the PREV log prev.
func (d *tableDir) reset(t *testing.T, latest, prev []byte) {
	t.Helper()
	must(t, os.WriteFile(d.cfg.path(suffixLatest), latest, 0o600))
	if len(prev) > 0 {
		must(t, os.WriteFile(d.cfg.path(suffixPrev), prev, 0o600))
	} else if d.hasPrev {
		if err := os.Remove(d.cfg.path(suffixPrev)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	d.hasPrev = len(prev) > 0
}
