package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
)

// source is a Source over r, as a *msgpack.Decoder over r is.
type source struct{ r io.Reader }

func (s source) ReadFull(p []byte) error { _, err := io.ReadFull(s.r, p); return err }
func (s source) Buffered() io.Reader     { return s.r }

// nested returns depth fixarrays of one element around a nil.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), mpNil)
}

// forged are inputs declaring more than they hold, or nesting too deep.
var forged = map[string][]byte{
	"empty":            {},
	"bin32 of 4 GB":    {0xc6, 0xff, 0xff, 0xff, 0xff, 0},
	"str32 of 4 GB":    {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
	"str16 short":      {0xda, 0x01, 0x00, 'a'},
	"fixstr short":     {0xa5, 'a', 'b'},
	"ext32 of 2 GB":    {0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01, 'a'},
	"fixext16 short":   {0xd8, 0x01, 'a'},
	"array32 huge":     {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01},
	"map32 huge":       {0xdf, 0x00, 0x01, 0x00, 0x00, 0xa1, 'a', 0x01},
	"map of one byte":  {0x81, 0x01},
	"uint64 short":     {0xcf, 0x00, 0x01},
	"array16 short":    {0xdc, 0x00},
	"invalid code":     {0xc1},
	"too deep":         nested(MaxDepth + 1),
	"deep and huge":    append(bytes.Repeat([]byte{0x91}, 10), 0xdd, 0x7f, 0xff, 0xff, 0xff),
	"length in header": {0xc5, 0x00},
}

// Every forged input is rejected by Skip and by ReadValue, with errors
// wrapping ErrMalformed, whether the input left is known or not.
func TestReaderRejectsForged(t *testing.T) {
	for name, in := range forged {
		r := NewReader(in)
		if err := r.Skip(); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Skip = %v, want ErrMalformed", name, err)
		}
		if _, err := ReadValue(source{bytes.NewReader(in)}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ReadValue = %v, want ErrMalformed", name, err)
		}
		if _, err := ReadValue(source{bufio.NewReader(bytes.NewReader(in))}); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ReadValue of a stream = %v, want ErrMalformed", name, err)
		}
	}
}

// The deepest value allowed reads; one level more does not.
func TestReaderDepth(t *testing.T) {
	r := NewReader(nested(MaxDepth))
	if err := r.Skip(); err != nil || r.Len() != 0 {
		t.Fatalf("Skip of %d levels = %v, %d bytes left", MaxDepth, err, r.Len())
	}
	if b, err := ReadValue(source{bytes.NewReader(nested(MaxDepth))}); err != nil || len(b) != MaxDepth+1 {
		t.Fatalf("ReadValue of %d levels = %x, %v", MaxDepth, b, err)
	}
}

// Headers are checked against the bytes left before the caller allocates
// for them: an array may declare at most one element per byte left, a map
// one pair per two bytes.
func TestReaderContainerBudget(t *testing.T) {
	tests := []struct {
		in      []byte
		n       int
		isMap   bool
		wantErr bool
	}{
		{[]byte{0x92, 1, 2}, 2, false, false},
		{[]byte{0x93, 1, 2}, 0, false, true},
		{[]byte{0x82, 1, 2, 3, 4}, 2, true, false},
		{[]byte{0x82, 1, 2, 3}, 0, true, true},
		{[]byte{0xdc, 0x00, 0x02, 1, 2}, 2, false, false},
		{[]byte{0xde, 0x00, 0x01, 1, 2}, 1, true, false},
	}
	for _, tt := range tests {
		r := NewReader(tt.in)
		n, isMap, ok, err := r.Container()
		if tt.wantErr {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%x: err = %v, want ErrMalformed", tt.in, err)
			}
			continue
		}
		if err != nil || !ok || n != tt.n || isMap != tt.isMap {
			t.Errorf("%x: Container = %d, %v, %v, %v; want %d, %v", tt.in, n, isMap, ok, err, tt.n, tt.isMap)
		}
	}
	// A scalar is not a container and is left unread.
	r := NewReader([]byte{0x05})
	if _, _, ok, err := r.Container(); ok || err != nil || r.Len() != 1 {
		t.Fatalf("Container of an int: ok %v, err %v, %d left", ok, err, r.Len())
	}
	// nil is -1 for ArrayLen and MapLen, and a map is not an array.
	r = NewReader([]byte{mpNil, mpNil, 0x80})
	if n, err := r.ArrayLen(); n != -1 || err != nil {
		t.Fatalf("ArrayLen(nil) = %d, %v", n, err)
	}
	if n, err := r.MapLen(); n != -1 || err != nil {
		t.Fatalf("MapLen(nil) = %d, %v", n, err)
	}
	if _, err := r.ArrayLen(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ArrayLen(map) = %v, want ErrMalformed", err)
	}
}

func TestReaderIntegers(t *testing.T) {
	tests := []struct {
		in       []byte
		u        uint64
		uErr     bool
		i        int64
		iErr     bool
		consumed int
	}{
		{[]byte{0x00}, 0, false, 0, false, 1},
		{[]byte{0x7f}, 127, false, 127, false, 1},
		{[]byte{0xff}, 0, true, -1, false, 1},
		{[]byte{0xe0}, 0, true, -32, false, 1},
		{[]byte{0xcc, 0xff}, 255, false, 255, false, 2},
		{[]byte{0xcd, 0x01, 0x00}, 256, false, 256, false, 3},
		{[]byte{0xce, 0xff, 0xff, 0xff, 0xff}, math.MaxUint32, false, math.MaxUint32, false, 5},
		{[]byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxUint64, false, 0, true, 9},
		{[]byte{0xd0, 0x05}, 5, false, 5, false, 2},
		{[]byte{0xd0, 0x80}, 0, true, -128, false, 2},
		{[]byte{0xd1, 0xff, 0xfe}, 0, true, -2, false, 3},
		{[]byte{0xd2, 0x80, 0, 0, 0}, 0, true, math.MinInt32, false, 5},
		{[]byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, 0, true, math.MinInt64, false, 9},
		{[]byte{0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxInt64, false, math.MaxInt64, false, 9},
		{[]byte{mpNil}, 0, true, 0, true, 1},
		{[]byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, 0, true, 0, true, 1},
		{[]byte{mpTrue}, 0, true, 0, true, 1},
		{[]byte{0xa1, '1'}, 0, true, 0, true, 1},
		{[]byte{0xcd, 0x01}, 0, true, 0, true, 1},
	}
	for _, tt := range tests {
		r := NewReader(tt.in)
		u, err := r.Uint()
		if (err != nil) != tt.uErr || err == nil && u != tt.u {
			t.Errorf("Uint(%x) = %d, %v; want %d, error %v", tt.in, u, err, tt.u, tt.uErr)
		}
		r = NewReader(tt.in)
		i, err := r.Int()
		if (err != nil) != tt.iErr || err == nil && i != tt.i {
			t.Errorf("Int(%x) = %d, %v; want %d, error %v", tt.in, i, err, tt.i, tt.iErr)
		}
		if !tt.iErr && r.Len() != len(tt.in)-tt.consumed {
			t.Errorf("Int(%x) left %d bytes, want %d", tt.in, r.Len(), len(tt.in)-tt.consumed)
		}
	}
}

// Str, Bin and Bytes return slices of the input, and Bytes takes either
// kind and nil.
func TestReaderStrings(t *testing.T) {
	in := AppendStr(nil, "hello")
	in = AppendBin(in, []byte("data"))
	in = AppendStr(in, strings.Repeat("s", 300))
	in = AppendBin(in, nil)
	in = append(in, mpNil)
	r := NewReader(in)
	if s, err := r.StrBytes(); err != nil || string(s) != "hello" || &s[0] != &in[1] {
		t.Fatalf("StrBytes = %q, %v (or a copy)", s, err)
	}
	if b, err := r.Bin(); err != nil || string(b) != "data" {
		t.Fatalf("Bin = %q, %v", b, err)
	}
	if b, err := r.Bytes(); err != nil || len(b) != 300 {
		t.Fatalf("Bytes of a str16 = %d bytes, %v", len(b), err)
	}
	if b, err := r.Bytes(); err != nil || len(b) != 0 {
		t.Fatalf("Bytes of an empty bin = %q, %v", b, err)
	}
	if b, err := r.Bytes(); err != nil || b != nil || r.Len() != 0 {
		t.Fatalf("Bytes of nil = %q, %v, %d left", b, err, r.Len())
	}
	r = NewReader(AppendBin(nil, []byte("x")))
	if _, err := r.Str(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Str of a bin = %v, want ErrMalformed", err)
	}
	r = NewReader(AppendStr(nil, "x"))
	if _, err := r.Bin(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Bin of a str = %v, want ErrMalformed", err)
	}
}

// ReadValue takes exactly one value and leaves the rest of the input; on a
// stream of unknown length it refuses a payload over MaxStreamItem before
// reading it, and grows its buffer with the bytes that arrive.
func TestReadValue(t *testing.T) {
	val := append([]byte{0x82, 0xa1, 'a', 0x92, 0x01, 0xc0, 0xa1, 'b'}, AppendBin(nil, make([]byte, 100000))...)
	in := append(append([]byte{}, val...), 0x07)
	for name, src := range map[string]io.Reader{
		"bytes":  bytes.NewReader(in),
		"stream": bufio.NewReader(bytes.NewReader(in)),
	} {
		s := source{src}
		got, err := ReadValue(s)
		if err != nil || !bytes.Equal(got, val) {
			t.Fatalf("%s: ReadValue = %d bytes, %v; want %d bytes", name, len(got), err, len(val))
		}
		rest, _ := io.ReadAll(src)
		if !bytes.Equal(rest, []byte{0x07}) {
			t.Fatalf("%s: ReadValue left %x, want 07", name, rest)
		}
	}
	big := []byte{0xc6, 0x00, 0x20, 0x00, 0x00, 'a', 'b', 'c'} // 2 MiB bin, 3 bytes
	_, err := ReadValue(source{bufio.NewReader(bytes.NewReader(big))})
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "limit on a stream") {
		t.Fatalf("2 MiB bin on a stream: %v, want the stream limit", err)
	}
	// A stream that hides its length (struct{ io.Reader } drops Len).
	short := []byte{0xc6, 0x00, 0x0f, 0x00, 0x00, 'a', 'b', 'c'} // 960 KiB bin, 3 bytes
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadValue(source{struct{ io.Reader }{bytes.NewReader(short)}})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated bin on a stream: %v, want ErrMalformed and io.ErrUnexpectedEOF", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 16<<10 {
		t.Fatalf("a 3-byte payload declaring 960 KiB allocated %d bytes", got)
	}
}

// FuzzReader: Skip and ReadValue never panic and agree on every input:
// the same success, and ReadValue returns exactly the bytes Skip passed.
// Whatever a Reader returns lies within the input.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0x82, 0xa1, 'a', 0x92, 0x01, 0xc0, 0xa1, 'b', 0xc4, 0x01, 0x00})
	f.Add(nested(MaxDepth))
	f.Add([]byte{0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00, 0xd8, 0x01})
	for _, in := range forged {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(in)
		errSkip := r.Skip()
		got, err := ReadValue(source{bytes.NewReader(in)})
		if (err == nil) != (errSkip == nil) {
			t.Fatalf("Skip = %v, ReadValue = %v", errSkip, err)
		}
		if err == nil && !bytes.Equal(got, in[:len(in)-r.Len()]) {
			t.Fatalf("ReadValue = %x, Skip passed %x", got, in[:len(in)-r.Len()])
		}
		stream, err := ReadValue(source{struct{ io.Reader }{bytes.NewReader(in)}})
		if err == nil && !bytes.Equal(stream, got) {
			t.Fatalf("ReadValue of a stream = %x, of bytes %x", stream, got)
		}
		r = NewReader(in)
		for r.Len() > 0 {
			n := r.Len()
			if b, err := r.Bytes(); err == nil && len(b) > n {
				t.Fatalf("Bytes returned %d bytes of %d", len(b), n)
			}
			if r.Len() == n {
				r.b = r.b[1:]
			}
		}
	})
}

// AppendStr and AppendBin pick the shortest header at each size boundary,
// and the reader takes back what they wrote.
func TestAppendLengthBoundaries(t *testing.T) {
	for _, tc := range []struct {
		n             int
		strHead, bin  byte
		strLen, binLn int // header bytes
	}{
		{0, 0xa0, mpBin8, 1, 2},
		{31, 0xa0 | 31, mpBin8, 1, 2},
		{32, mpStr8, mpBin8, 2, 2},
		{math.MaxUint8, mpStr8, mpBin8, 2, 2},
		{math.MaxUint8 + 1, mpStr16, mpBin16, 3, 3},
		{math.MaxUint16, mpStr16, mpBin16, 3, 3},
		{math.MaxUint16 + 1, mpStr32, mpBin32, 5, 5},
	} {
		s := strings.Repeat("x", tc.n)
		str := AppendStr(nil, s)
		if str[0] != tc.strHead || len(str) != tc.n+tc.strLen {
			t.Errorf("AppendStr(%d bytes) head %#x, %d bytes; want %#x, %d", tc.n, str[0], len(str), tc.strHead, tc.n+tc.strLen)
		}
		bin := AppendBin(nil, []byte(s))
		if bin[0] != tc.bin || len(bin) != tc.n+tc.binLn {
			t.Errorf("AppendBin(%d bytes) head %#x, %d bytes; want %#x, %d", tc.n, bin[0], len(bin), tc.bin, tc.n+tc.binLn)
		}
		r := NewReader(append(str, bin...))
		if got, err := r.Str(); err != nil || got != s {
			t.Errorf("Str of %d bytes: %d bytes, %v", tc.n, len(got), err)
		}
		if got, err := r.Bin(); err != nil || string(got) != s {
			t.Errorf("Bin of %d bytes: %d bytes, %v", tc.n, len(got), err)
		}
	}
}

// MapFields hands each key to field in order, reads nil as an empty map,
// and stops at the first error of the map or of field.
func TestMapFields(t *testing.T) {
	in := appendMapHeader(nil, 2)
	in = AppendStr(in, "a")
	in = appendUint(in, 1)
	in = AppendStr(in, "b")
	in = AppendStr(in, "skipped")
	var keys []string
	var a uint64
	r := NewReader(in)
	err := r.MapFields(func(key string) (err error) {
		keys = append(keys, key)
		if key == "a" {
			a, err = r.Uint()
			return err
		}
		return r.Skip()
	})
	if err != nil || strings.Join(keys, ",") != "a,b" || a != 1 || r.Len() != 0 {
		t.Fatalf("MapFields: keys %q, a %d, %d left, %v", keys, a, r.Len(), err)
	}

	r = NewReader([]byte{mpNil})
	if err := r.MapFields(func(string) error { t.Fatal("field called for nil"); return nil }); err != nil || r.Len() != 0 {
		t.Fatalf("MapFields of nil = %v, %d left", err, r.Len())
	}

	stop := errors.New("stop")
	calls := 0
	r = NewReader(in)
	if err := r.MapFields(func(string) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("MapFields with a failing field = %v after %d calls, want stop after 1", err, calls)
	}

	for name, bad := range map[string][]byte{
		"not a map":   AppendStr(nil, "x"),
		"key not str": {0x81, 0x01, 0x01},
		"short":       {0x82, 0xa1, 'a', 0x01},
	} {
		r := NewReader(bad)
		if err := r.MapFields(func(string) error { return r.Skip() }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: MapFields = %v, want ErrMalformed", name, err)
		}
	}
}
