package table

import (
	"bytes"
	"errors"
	"testing"
)

func TestQuickDurableRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tb, err := Open(Config{Dir: dir, Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	must(t, tb.Set("a", []byte("1")))
	must(t, tb.SSet("s", "x"))
	must(t, tb.HSet("h", "f", []byte("v")))
	must(t, tb.Close())
	tb, err = Open(Config{Dir: dir, Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	if v, err := tb.Get("a"); err != nil || !bytes.Equal(v, []byte("1")) {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if ok, err := tb.SMember("s", "x"); !ok || err != nil {
		t.Fatalf("SMember = %v, %v", ok, err)
	}
	if _, err := tb.Get("s"); !errors.Is(err, ErrWrongType) {
		t.Fatalf("Get on set: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
