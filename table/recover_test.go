package table

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/notp-go/notp/internal/testutil"
)

// Opening a table directory whose logs are FuzzOpenLog's seeds, as real
// files, does what the recovery on bytes says: it fails only with
// ErrCorrupt and only when the bytes do; otherwise it holds the same
// contents, leaves the live log truncated after its last good record (or
// started afresh) and the PREV log only when it was replayed, takes a
// write and reopens to the same contents.
func TestOpenLogFiles(t *testing.T) {
	for _, c := range append(logCases(), corpusCases(t, "testdata/fuzz/FuzzOpenLog")...) {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Dir: t.TempDir(), Name: "f", Sync: SyncNever, WriteThreshold: -1, AutoSave: -1, Logger: testutil.Logger(t)}
			must(t, os.WriteFile(cfg.path(suffixLatest), c.latest, 0o600))
			if len(c.prev) > 0 {
				must(t, os.WriteFile(cfg.path(suffixPrev), c.prev, 0o600))
			}
			rc, fate, rp, rerr := recoverBytes(c.latest, c.prev)
			tb, err := Open(cfg)
			if err != nil || rerr != nil {
				if !errors.Is(err, ErrCorrupt) || !errors.Is(rerr, ErrCorrupt) {
					t.Fatalf("Open: %v; on bytes: %v", err, rerr)
				}
				return
			}
			if got, want := dump(t, tb), stateDump(rc.s); !equalMaps(got, want) {
				t.Fatalf("Open: %v, on bytes %v", got, want)
			}
			wantLatest, wantPrev := afterRecovery(&rc, fate, rp, c.latest, c.prev)
			checkFile(t, cfg.path(suffixLatest), wantLatest)
			checkFile(t, cfg.path(suffixPrev), wantPrev)

			must(t, tb.Set("after", []byte("x")))
			want := dump(t, tb)
			must(t, tb.Close())
			tb = openT(t, cfg)
			if got := dump(t, tb); !equalMaps(got, want) {
				t.Fatalf("reopen: %v, want %v", got, want)
			}
		})
	}
}

// checkFile fails unless the file at path holds want; an empty want
// means no file.
func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if len(want) == 0 {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s should not exist: %d bytes, %v", path, len(got), err)
		}
		return
	}
	must(t, err)
	if string(got) != string(want) {
		t.Fatalf("%s holds %d bytes %x, want %d bytes %x", path, len(got), got, len(want), want)
	}
}

// A read error in the middle of a log is returned, not taken for a torn
// tail: a replay that treated it as damage would have Open truncate good
// records and a compaction write a snapshot without them.
func TestReplayReadErrorIsNotDamage(t *testing.T) {
	errDisk := errors.New("disk error")
	log := append(appendLogHeader(nil, 1), seedLog()...)
	for _, cut := range []int{logHeader, logHeader + 3, logHeader + frameHeader + 2, len(log) - 1} {
		for _, live := range []bool{false, true} {
			rc := recovery{s: state{}}
			r := io.MultiReader(bytes.NewReader(log[:cut]), iotest.ErrReader(errDisk))
			_, rp, err := rc.replay(r, int64(len(log)), live)
			if !errors.Is(err, errDisk) {
				t.Fatalf("cut at %d, live %v: %v (replayed to %d), want the read error", cut, live, err, rp.end)
			}
		}
	}
}

// corpusCases reads the inputs committed for FuzzOpenLog in dir, so that
// they also run against real files; a missing dir holds none.
func corpusCases(t *testing.T, dir string) []logCase {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	must(t, err)
	var cases []logCase
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		args, err := parseCorpus(data)
		if err != nil || len(args) != 2 {
			t.Fatalf("%s: %d arguments, %v", e.Name(), len(args), err)
		}
		cases = append(cases, logCase{name: e.Name(), latest: args[0], prev: args[1]})
	}
	return cases
}

// parseCorpus reads a fuzz corpus file whose arguments are all []byte.
func parseCorpus(data []byte) ([][]byte, error) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if lines[0] != "go test fuzz v1" {
		return nil, fmt.Errorf("not a fuzz corpus file: %q", lines[0])
	}
	var args [][]byte
	for _, l := range lines[1:] {
		q, ok1 := strings.CutPrefix(l, "[]byte(")
		q, ok2 := strings.CutSuffix(q, ")")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("not a []byte argument: %q", l)
		}
		s, err := strconv.Unquote(q)
		if err != nil {
			return nil, fmt.Errorf("argument %q: %w", l, err)
		}
		args = append(args, []byte(s))
	}
	return args, nil
}
