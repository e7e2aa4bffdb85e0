package table

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/notp-go/notp"
)

func TestGetReturnsTheScalarOrNotFound(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		if _, err := tb.Get("k"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get of an absent key: %v, want ErrNotFound", err)
		}
		must(t, tb.Set("k", []byte("v")))
		got, err := tb.Get("k")
		if err != nil || string(got) != "v" {
			t.Fatalf("Get = %q, %v; want v", got, err)
		}
	})
}

func TestSetReplacesAnyKind(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.SSet("k", "m"))
		must(t, tb.Set("k", []byte("v1")))
		must(t, tb.Set("k", []byte("v2")))
		if got := dump(t, tb); !equalMaps(got, map[string]string{"k": "scalar:v2"}) {
			t.Fatalf("table = %v", got)
		}
	})
}

func TestValuesAreCopiedInAndOut(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		in := []byte("abc")
		must(t, tb.Set("k", in))
		must(t, tb.HSet("h", "f", in))
		in[0] = 'X'
		out, _ := tb.Get("k")
		out[1] = 'Y'
		hout, _ := tb.HGet("h", "f")
		hout[2] = 'Z'
		must(t, tb.ForEach(context.Background(), func(_ string, v Value) error {
			if v.Kind == KindScalar {
				v.Bytes[0] = 'W'
			}
			if v.Kind == KindHash {
				v.Fields["f"][0] = 'W'
				v.Fields["new"] = nil
			}
			return nil
		}))
		if got := dump(t, tb); !equalMaps(got, map[string]string{"k": "scalar:abc", "h": "hash f=abc"}) {
			t.Fatalf("table changed through caller buffers: %v", got)
		}
	})
}

func TestSMemberOfAbsentKeyIsFalse(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		ok, err := tb.SMember("s", "m")
		if ok || err != nil {
			t.Fatalf("SMember of an absent key = %v, %v; want false, nil", ok, err)
		}
		must(t, tb.SSet("s", "m"))
		must(t, tb.SSet("s", "m")) // adding twice is one member
		must(t, tb.SSet("s", "n"))
		if ok, err := tb.SMember("s", "m"); !ok || err != nil {
			t.Fatalf("SMember = %v, %v", ok, err)
		}
		if ok, _ := tb.SMember("s", "zz"); ok {
			t.Fatal("SMember of a missing member is true")
		}
		if got := dump(t, tb); got["s"] != "set m n" {
			t.Fatalf("set = %q", got["s"])
		}
	})
}

func TestHGetNotFoundForKeyOrField(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		if _, err := tb.HGet("h", "f"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("HGet of an absent key: %v", err)
		}
		must(t, tb.HSet("h", "f", []byte("1")))
		must(t, tb.HSet("h", "f", []byte("2")))
		if _, err := tb.HGet("h", "g"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("HGet of an absent field: %v", err)
		}
		if v, err := tb.HGet("h", "f"); err != nil || string(v) != "2" {
			t.Fatalf("HGet = %q, %v; want 2", v, err)
		}
	})
}

// Every operation of one kind against a key of another fails with
// ErrWrongType, in notp's words, and leaves the table as it was.
func TestTypeMisuseFailsAndChangesNothing(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.Set("scalar", []byte("v")))
		must(t, tb.SSet("set", "m"))
		must(t, tb.HSet("hash", "f", []byte("v")))
		before := dump(t, tb)
		cases := []struct {
			op, key, kind string
			call          func(key string) error
		}{
			{"get", "set", "set", func(k string) error { _, err := tb.Get(k); return err }},
			{"get", "hash", "hash", func(k string) error { _, err := tb.Get(k); return err }},
			{"smember", "scalar", "scalar", func(k string) error { _, err := tb.SMember(k, "m"); return err }},
			{"smember", "hash", "hash", func(k string) error { _, err := tb.SMember(k, "m"); return err }},
			{"sset", "scalar", "scalar", func(k string) error { return tb.SSet(k, "m") }},
			{"sset", "hash", "hash", func(k string) error { return tb.SSet(k, "m") }},
			{"sdel", "scalar", "scalar", func(k string) error { return tb.SDel(k, "m") }},
			{"sdel", "hash", "hash", func(k string) error { return tb.SDel(k, "f") }},
			{"hget", "scalar", "scalar", func(k string) error { _, err := tb.HGet(k, "f"); return err }},
			{"hget", "set", "set", func(k string) error { _, err := tb.HGet(k, "f"); return err }},
			{"hset", "scalar", "scalar", func(k string) error { return tb.HSet(k, "f", nil) }},
			{"hset", "set", "set", func(k string) error { return tb.HSet(k, "m", nil) }},
			{"hdel", "scalar", "scalar", func(k string) error { return tb.HDel(k, "f") }},
			{"hdel", "set", "set", func(k string) error { return tb.HDel(k, "m") }},
		}
		for _, c := range cases {
			err := c.call(c.key)
			if !isWrongType(err) {
				t.Errorf("%s on %s: %v, want ErrWrongType", c.op, c.key, err)
				continue
			}
			want := "table: Invalid command '" + c.op + "' against key '" + c.key + "' of type '" + c.kind + "'"
			if err.Error() != want {
				t.Errorf("%s on %s: error %q, want %q", c.op, c.key, err, want)
			}
			var te *TypeError
			if !errors.As(err, &te) || te.Code() != CodeInvalidType || te.Op != c.op || te.Key != c.key || te.Kind.String() != c.kind {
				t.Errorf("%s on %s: %#v, want a TypeError with code %s", c.op, c.key, te, CodeInvalidType)
			}
		}
		if after := dump(t, tb); !equalMaps(before, after) {
			t.Fatalf("a failed operation changed the table: %v, was %v", after, before)
		}
	})
}

func TestDelRemovesAnyKind(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.Set("a", nil))
		must(t, tb.SSet("b", "m"))
		must(t, tb.HSet("c", "f", nil))
		for _, k := range []string{"a", "b", "c", "absent"} {
			must(t, tb.Del(k))
		}
		if tb.Len() != 0 {
			t.Fatalf("Len = %d after deleting every key", tb.Len())
		}
	})
}

func TestSDelRemovesMembersAndDropsTheEmptyKey(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.SDel("s", "m")) // absent key: nothing to do
		must(t, tb.SSet("s", "m"))
		must(t, tb.SSet("s", "n"))
		must(t, tb.SDel("s", "m"))
		must(t, tb.SDel("s", "zz"))
		if got := dump(t, tb); got["s"] != "set n" {
			t.Fatalf("set = %q, want n", got["s"])
		}
		must(t, tb.SDel("s", "n"))
		if tb.Len() != 0 {
			t.Fatalf("emptied set left its key: %v", dump(t, tb))
		}
		// The key is free for another kind again.
		must(t, tb.Set("s", []byte("now a scalar")))
	})
}

func TestHDelRemovesFieldsAndDropsTheEmptyKey(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.HDel("h", "f")) // absent key
		must(t, tb.HSet("h", "f", []byte("1")))
		must(t, tb.HSet("h", "g", []byte("2")))
		must(t, tb.HDel("h", "f"))
		must(t, tb.HDel("h", "zz"))
		if got := dump(t, tb); got["h"] != "hash g=2" {
			t.Fatalf("hash = %q", got["h"])
		}
		must(t, tb.HDel("h", "g"))
		if tb.Len() != 0 {
			t.Fatalf("emptied hash left its key: %v", dump(t, tb))
		}
	})
}

func TestClearEmptiesTheTable(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.Set("a", nil))
		must(t, tb.SSet("b", "m"))
		must(t, tb.Clear())
		if tb.Len() != 0 {
			t.Fatalf("Len = %d after Clear", tb.Len())
		}
	})
}

func TestForEachVisitsEveryKeyInOrder(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.Set("c", []byte("3")))
		must(t, tb.SSet("a", "y"))
		must(t, tb.SSet("a", "x"))
		must(t, tb.HSet("b", "f", []byte("2")))
		var keys, vals []string
		must(t, tb.ForEach(context.Background(), func(k string, v Value) error {
			keys = append(keys, k)
			vals = append(vals, v.String())
			return nil
		}))
		if strings.Join(keys, ",") != "a,b,c" || strings.Join(vals, ",") != "set x y,hash f=2,scalar:3" {
			t.Fatalf("ForEach saw %v %v", keys, vals)
		}
	})
}

func TestForEachStopsOnError(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		for _, k := range []string{"a", "b", "c"} {
			must(t, tb.Set(k, nil))
		}
		stop := errors.New("stop")
		var seen []string
		err := tb.ForEach(context.Background(), func(k string, _ Value) error {
			seen = append(seen, k)
			if k == "b" {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || len(seen) != 2 {
			t.Fatalf("ForEach = %v after %v; want the callback's error after a, b", err, seen)
		}
	})
}

func TestForEachStopsWhenContextIsDone(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		for _, k := range []string{"a", "b", "c"} {
			must(t, tb.Set(k, nil))
		}
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := tb.ForEach(ctx, func(string, Value) error {
			n++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || n != 1 {
			t.Fatalf("ForEach = %v after %d calls; want context.Canceled after 1", err, n)
		}
	})
}

// The callback runs without the table's lock, so it may write to the
// table; keys deleted before their turn are skipped.
func TestForEachCallbackMayWrite(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		for _, k := range []string{"a", "b", "c"} {
			must(t, tb.Set(k, nil))
		}
		var seen []string
		must(t, tb.ForEach(context.Background(), func(k string, _ Value) error {
			seen = append(seen, k)
			return tb.Del("b")
		}))
		if strings.Join(seen, ",") != "a,c" {
			t.Fatalf("saw %v, want a,c", seen)
		}
	})
}

func TestSizeLimitsRejectAndChangeNothing(t *testing.T) {
	for _, durable := range []bool{false, true} {
		cfg := Config{MaxKeyBytes: 4, MaxValueBytes: 8}
		if durable {
			cfg.Dir, cfg.Name = t.TempDir(), "t"
		}
		tb := openT(t, cfg)
		long := strings.Repeat("k", 5)
		big := bytes.Repeat([]byte("v"), 9)
		for name, err := range map[string]error{
			"Set key":    tb.Set(long, nil),
			"Set value":  tb.Set("k", big),
			"SSet key":   tb.SSet(long, "m"),
			"SSet mem":   tb.SSet("k", long),
			"HSet field": tb.HSet("k", long, nil),
			"HSet value": tb.HSet("k", "f", big),
		} {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("durable=%v %s: %v, want ErrTooLarge", durable, name, err)
			}
		}
		must(t, tb.Set("kkkk", bytes.Repeat([]byte("v"), 8))) // at the limits
		if tb.Len() != 1 {
			t.Fatalf("durable=%v: Len = %d, want 1", durable, tb.Len())
		}
	}
}

func TestOperationsAfterCloseFail(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		must(t, tb.Set("k", nil))
		must(t, tb.Close())
		must(t, tb.Close()) // idempotent
		_, gerr := tb.Get("k")
		_, serr := tb.SMember("k", "m")
		_, herr := tb.HGet("k", "f")
		for name, err := range map[string]error{
			"Get": gerr, "SMember": serr, "HGet": herr,
			"Set": tb.Set("k", nil), "SSet": tb.SSet("k", "m"), "SDel": tb.SDel("k", "m"),
			"HSet": tb.HSet("k", "f", nil), "HDel": tb.HDel("k", "f"), "Del": tb.Del("k"),
			"Clear":   tb.Clear(),
			"ForEach": tb.ForEach(context.Background(), func(string, Value) error { return nil }),
		} {
			if !errors.Is(err, ErrClosed) || !errors.Is(err, notp.ErrClosed) {
				t.Errorf("%s after Close: %v, want table.ErrClosed wrapping notp.ErrClosed", name, err)
			}
		}
	})
}

func TestIdleWithoutCompaction(t *testing.T) {
	bothKinds(t, func(t *testing.T, tb *Table) {
		if !tb.Idle() {
			t.Fatal("a fresh table is not idle")
		}
		must(t, tb.Set("k", []byte("v")))
		must(t, tb.SSet("s", "m"))
		if !tb.Idle() {
			t.Fatal("not idle after writes that start no compaction")
		}
	})
}
