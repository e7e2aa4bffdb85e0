package kvstore

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestReopenKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"a", "1"}, {"b", "2"}, {"a", "3"}} {
		if err := s.Put(kv[0], []byte(kv[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete("b"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(dir, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok := s.Get("a"); !ok || string(v) != "3" {
		t.Fatalf("a = %q %v, want 3", v, ok)
	}
	if _, ok := s.Get("b"); ok {
		t.Fatal("deleted key b came back")
	}
}

func TestTornAndCorruptTailsAreTruncated(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"short header": func(b []byte) []byte { return append(b, 0, 0, 1) },
		"short body":   func(b []byte) []byte { return append(b, encodeRecord(opPut, "z", []byte("zz"))[:10]...) },
		"bad crc": func(b []byte) []byte {
			r := encodeRecord(opPut, "z", []byte("zz"))
			r[len(r)-1] ^= 1
			return append(b, r...)
		},
		"huge length": func(b []byte) []byte { return append(b, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := Open(dir, "t")
			s.Put("a", []byte("1"))
			s.Close()
			p := filepath.Join(dir, "t.kv")
			b, _ := os.ReadFile(p)
			good := len(b)
			os.WriteFile(p, damage(b), 0o600)
			s, err := Open(dir, "t")
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := s.Get("a"); !ok || string(v) != "1" || s.Len() != 1 {
				t.Fatalf("after damage: a=%q len=%d", v, s.Len())
			}
			// The next write lands after the good prefix and survives.
			s.Put("b", []byte("2"))
			s.Close()
			b, _ = os.ReadFile(p)
			if !bytes.Equal(b[good:], encodeRecord(opPut, "b", []byte("2"))) {
				t.Fatal("tail was not truncated before the next write")
			}
		})
	}
}

func TestCompactionKeepsLiveKeys(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, "t")
	for i := range 3000 {
		if err := s.Put("k", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.Put("other", []byte("x"))
	s.Close()
	st, _ := os.Stat(filepath.Join(dir, "t.kv"))
	if st.Size() > 20*compactMin {
		t.Fatalf("log is %d bytes after 3000 rewrites of one key: not compacted", st.Size())
	}
	s, _ = Open(dir, "t")
	defer s.Close()
	if v, _ := s.Get("k"); !bytes.Equal(v, []byte{byte(2999 % 256)}) {
		t.Fatalf("k = %v", v)
	}
	if v, _ := s.Get("other"); string(v) != "x" {
		t.Fatalf("other = %q", v)
	}
}

func TestClosedAndTooLarge(t *testing.T) {
	s, _ := Open("", "")
	if err := s.Put("k", make([]byte, MaxRecord)); err == nil {
		t.Fatal("oversized put accepted")
	}
	s.Close()
	if err := s.Put("k", nil); err != ErrClosed {
		t.Fatalf("put after close: %v", err)
	}
	if _, err := Open(t.TempDir(), "../x"); err == nil {
		t.Fatal("name with a path accepted")
	}
}

// FuzzReplay: any log bytes replay without panicking, and a record that
// decodes re-encodes to the same bytes.
func FuzzReplay(f *testing.F) {
	f.Add(encodeRecord(opPut, "a", []byte("1")))
	f.Add(append(encodeRecord(opPut, "a", nil), encodeRecord(opDel, "a", nil)...))
	f.Add([]byte{0, 0, 0, 2, 0, 0, 0, 0, 1, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := map[string][]byte{}
		good, _, err := replay(bytes.NewReader(b), m)
		if err != nil || good > int64(len(b)) {
			t.Fatalf("replay: good=%d err=%v", good, err)
		}
		if len(b) > 8 {
			op, k, v, err := decodeRecord(b[8:])
			if err == nil && !bytes.Equal(encodeRecord(op, k, v)[8:], b[8:]) {
				t.Fatal("record does not round-trip")
			}
		}
	})
}
