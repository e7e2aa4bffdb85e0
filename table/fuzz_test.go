package table

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
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

// logCase is the PREV log (none when empty) and live log a table
// directory holds on opening, with no snapshot.
type logCase struct {
	name         string
	latest, prev []byte
}

// logCases are FuzzOpenLog's seeds, which TestOpenLogFiles also opens as
// real files: a good log, a torn one, a headerless PREV log, a live log
// newer than its PREV log and one that is not, a damaged record in the
// middle, a headerless live log and a length that lies.
func logCases() []logCase {
	hdr := appendLogHeader(nil, 1)
	log := seedLog()
	damaged := append(bytes.Clone(hdr), log...)
	damaged[logHeader+frameHeader+10] ^= 0xff // in the second record
	lying := append(bytes.Clone(hdr), appendRecord(nil, &record{op: opSet, key: "k", val: []byte("v")})...)
	lying = append(lying, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1)
	return []logCase{
		{"good", append(bytes.Clone(hdr), log...), nil},
		{"torn", append(bytes.Clone(hdr), log[:20]...), nil},
		{"headerless prev", []byte("NTPTLOG1"), append(appendLogHeader(nil, 2), 1, 2, 3)},
		{"live after prev", append(appendLogHeader(nil, 3), log...), append(appendLogHeader(nil, 2), log...)},
		{"live before prev", append(appendLogHeader(nil, 2), log...), append(appendLogHeader(nil, 3), log...)},
		{"damaged middle", damaged, nil},
		{"headerless live after prev", nil, append(appendLogHeader(nil, 4), log[:30]...)},
		{"lying length", lying, nil},
	}
}

// recoverBytes runs Open's recovery of the logs on bytes, with no
// snapshot: the PREV log prev (none when empty), then the live log.
func recoverBytes(latest, prev []byte) (recovery, logFate, replayed, error) {
	rc := recovery{s: state{}}
	if len(prev) > 0 {
		if _, _, err := rc.replay(bytes.NewReader(prev), int64(len(prev)), false); err != nil {
			return rc, logStale, replayed{}, err
		}
	}
	fate, rp, err := rc.replay(bytes.NewReader(latest), int64(len(latest)), true)
	return rc, fate, rp, err
}

// afterRecovery is what Open leaves on disk and in memory after
// recovering latest and prev, as recoverBytes found: the live log,
// truncated after its last good record or started afresh, and the PREV
// log, kept when it was replayed and removed otherwise.
func afterRecovery(rc *recovery, fate logFate, rp replayed, latest, prev []byte) (newLatest, newPrev []byte) {
	if fate == logReplayed {
		newLatest = latest[:rp.end:rp.end]
	} else {
		newLatest = appendLogHeader(nil, rc.last+1)
	}
	if rc.prevPending {
		newPrev = prev
	}
	return newLatest, newPrev
}

// stateDump renders s as dump renders a table.
func stateDump(s state) map[string]string {
	out := make(map[string]string, len(s))
	for k, e := range s {
		out[k] = e.value().String()
	}
	return out
}

// Recovering logs of arbitrary bytes never panics and fails at most with
// ErrCorrupt, only for a live log not newer than the PREV log replayed
// before it; a replay stops at a record boundary inside the log and is
// clean exactly when it reaches the log's end. Recovering again what Open
// leaves (the live log cut after its last good record, or a fresh one,
// and one more record written to it) is clean and gives the same
// contents plus that record. The recovery runs on the bytes in memory,
// as Open runs it on the files; TestOpenLogFiles opens the seeds as files.
func FuzzOpenLog(f *testing.F) {
	for _, c := range logCases() {
		f.Add(c.latest, c.prev)
	}
	after := record{op: opSet, key: "after", val: []byte("x")}
	f.Fuzz(func(t *testing.T, latest, prev []byte) {
		rc, fate, rp, err := recoverBytes(latest, prev)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !rc.prevPending {
				t.Fatalf("recovery: %v", err)
			}
			return
		}
		if fate == logReplayed {
			if rp.end < logHeader || rp.end > int64(len(latest)) || rp.clean != (rp.end == int64(len(latest))) {
				t.Fatalf("replay ended at %d of %d bytes, clean %v", rp.end, len(latest), rp.clean)
			}
			if !rp.clean && rp.damage == nil {
				t.Fatal("a replay that stopped early gives no reason")
			}
		}
		rc.s.apply(&after)
		want := stateDump(rc.s)
		newLatest, newPrev := afterRecovery(&rc, fate, rp, latest, prev)
		newLatest = appendRecord(slices.Clone(newLatest), &after)
		rc2, fate2, rp2, err := recoverBytes(newLatest, newPrev)
		if err != nil || fate2 != logReplayed || !rp2.clean {
			t.Fatalf("recovering again: fate %d, clean %v, %v", fate2, rp2.clean, err)
		}
		wantRecords := 1
		if fate == logReplayed {
			wantRecords += rp.records
		}
		if rp2.records != wantRecords {
			t.Fatalf("recovering again: %d records, want %d", rp2.records, wantRecords)
		}
		if got := stateDump(rc2.s); !equalMaps(got, want) {
			t.Fatalf("recovering again: %v, want %v", got, want)
		}
	})
}
