package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testcert"
)

const testAuthProto byte = 'A'

// authEcho accepts one connection on ln and echoes it until EOF.
func authEcho(t *testing.T, ln net.Listener) <-chan error {
	t.Helper()
	return acceptEcho(ln, func(c net.Conn) io.Reader { return c })
}

// acceptEcho accepts one connection on ln and writes back what src(c)
// reads from it, then closes it and reports the accept or copy error.
func acceptEcho(ln net.Listener, src func(net.Conn) io.Reader) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, src(c))
		done <- err
	}()
	return done
}

// roundTrip writes p on c, closes c's write side through a half-read and
// checks the echo.
func roundTrip(t *testing.T, c net.Conn, p []byte) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { _, err := c.Write(p); errc <- err }()
	got := make([]byte, len(p))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, p) {
		t.Fatal("echo differs from what was sent")
	}
}

func TestAuthStreamRoundTrip(t *testing.T) {
	checkLeaks(t)
	tlsCfg := testcert.New(t).Config
	for _, tc := range []struct {
		name string
		opt  func(*Config)
		want string // "sealed" or "plain"
	}{
		{"cookie", nil, "sealed"},
		{"tls", func(c *Config) { c.TLS = tlsCfg }, "sealed"},
		{"insecure", func(c *Config) { c.Cookie, c.Insecure = "", true }, "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := startKernel(t, tc.opt), startKernel(t, tc.opt)
			ln, err := b.ListenAuth(testAuthProto)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			done := authEcho(t, ln)
			c, err := a.DialAuth(ctxT(t), b.Addr().String(), testAuthProto)
			if err != nil {
				t.Fatal(err)
			}
			_, sealed := c.(*sealedConn)
			if got := map[bool]string{true: "sealed", false: "plain"}[sealed]; got != tc.want {
				t.Fatalf("connection is %s, want %s", got, tc.want)
			}
			roundTrip(t, c, []byte("small"))
			big := bytes.Repeat([]byte("0123456789abcdef"), (3*MaxAuthRecord)/16+7)
			roundTrip(t, c, big) // spans several records
			c.Close()
			if err := <-done; err != nil && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("echo: %v", err)
			}
		})
	}
}

// A dialer with another cookie is refused, gets nothing past the
// acceptor's hello (nothing derived from the cookie), and never reaches
// Accept; a secure and an insecure kernel refuse each other.
func TestAuthStreamWrongCookie(t *testing.T) {
	checkLeaks(t)
	b := startKernel(t, nil)
	ln, err := b.ListenAuth(testAuthProto)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	other := startKernel(t, func(c *Config) { c.Cookie = "another cookie 0123456789abcdefghij" })
	if _, err := other.DialAuth(ctxT(t), b.Addr().String(), testAuthProto); !errors.Is(err, ErrAuthHandshake) {
		t.Fatalf("DialAuth with a wrong cookie = %v, want ErrAuthHandshake", err)
	}
	ins := startKernel(t, func(c *Config) { c.Cookie, c.Insecure = "", true })
	if _, err := ins.DialAuth(ctxT(t), b.Addr().String(), testAuthProto); !errors.Is(err, ErrAuthHandshake) {
		t.Fatalf("DialAuth from an insecure kernel = %v, want ErrAuthHandshake", err)
	}

	// By hand: a valid hello and a forged proof. The acceptor answers the
	// hello (no cookie material in it) and closes without a proof.
	raw, err := other.Dial(ctxT(t), b.Addr().String(), testAuthProto)
	if err != nil {
		t.Fatal(err)
	}
	hello := append([]byte{authVersion, 0}, bytes.Repeat([]byte{7}, authNonceSize)...)
	raw.Write(hello)
	raw.Write(bytes.Repeat([]byte{1}, authMACSize))
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(raw)
	raw.Close()
	if len(got) != authHelloSize {
		t.Fatalf("forger received %d bytes, want only the %d-byte hello", len(got), authHelloSize)
	}
	waitFor(t, "three handshakes rejected", func() bool { return b.Stats().RejectedHandshake >= 3 })
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a connection without the cookie was accepted")
	default:
	}
}

// A silent dialer is dropped at the handshake deadline, and a flood of
// silent dialers beyond the handshake cap is refused at once.
func TestAuthStreamHandshakeBudget(t *testing.T) {
	checkLeaks(t)
	a := startKernel(t, nil)
	b := startKernel(t, func(c *Config) { c.HandshakeTimeout = 300 * time.Millisecond })
	ln, err := b.ListenAuth(testAuthProto)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	for range authMaxHandshakes + 4 {
		c, err := a.Dial(ctxT(t), b.Addr().String(), testAuthProto)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Fatalf("silent dialer was not closed by the acceptor: %v", err)
		}
		c.Close()
	}
	if got := b.Stats().RejectedHandshake; got < authMaxHandshakes+4 {
		t.Fatalf("RejectedHandshake = %d, want %d", got, authMaxHandshakes+4)
	}
}

// sealedPair is two sealed conns over a pipe, as the handshake makes them.
func sealedPair() (*sealedConn, *sealedConn) {
	x, y := net.Pipe()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	return newSealedConn(x, k1, k2), newSealedConn(y, k2, k1)
}

// sealRecords returns the wire bytes of msgs sealed as consecutive records
// of the k1 direction of sealedPair.
func sealRecords(msgs ...[]byte) []byte {
	var out bytes.Buffer
	w := newSealedConn(writerConn{&out}, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	for _, m := range msgs {
		w.Write(m)
	}
	return out.Bytes()
}

type writerConn struct{ w io.Writer }

func (c writerConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (c writerConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c writerConn) Close() error                     { return nil }
func (c writerConn) LocalAddr() net.Addr              { return nil }
func (c writerConn) RemoteAddr() net.Addr             { return nil }
func (c writerConn) SetDeadline(time.Time) error      { return nil }
func (c writerConn) SetReadDeadline(time.Time) error  { return nil }
func (c writerConn) SetWriteDeadline(time.Time) error { return nil }

// readerConn is the reading side of sealedPair's k1 direction over fixed
// bytes.
func readerConn(p []byte) *sealedConn {
	return newSealedConn(bytesConn{writerConn{io.Discard}, bytes.NewReader(p)}, bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{1}, 32))
}

type bytesConn struct {
	writerConn
	r io.Reader
}

func (c bytesConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Altered, replayed, reordered and oversized records end the stream with
// ErrBadSignature; the bytes before them read fine.
func TestSealedRecordsRejectTampering(t *testing.T) {
	one, two := sealRecords([]byte("first")), sealRecords([]byte("first"), []byte("second"))
	rec2 := two[len(one):]
	flipped := bytes.Clone(one)
	flipped[len(flipped)-1] ^= 1
	huge := binary.BigEndian.AppendUint32(nil, MaxAuthRecord+authTagSize+1)
	for _, tc := range []struct {
		name   string
		stream []byte
		good   string
	}{
		{"altered", flipped, ""},
		{"replayed", append(bytes.Clone(one), one...), "first"},
		{"reordered", append(bytes.Clone(rec2), one...), ""},
		{"oversized", append(bytes.Clone(one), huge...), "first"},
		{"short", binary.BigEndian.AppendUint32(nil, 3), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := readerConn(tc.stream)
			defer r.Close()
			got, err := io.ReadAll(r)
			if string(got) != tc.good {
				t.Fatalf("read %q before the error, want %q", got, tc.good)
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("err = %v, want ErrBadSignature", err)
			}
		})
	}
	// The intact stream reads in full.
	r := readerConn(two)
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "firstsecond" {
		t.Fatalf("intact stream = %q, %v", got, err)
	}
	r.Close()
}

// Both directions of a sealed pair carry data concurrently.
func TestSealedConnDuplex(t *testing.T) {
	a, b := sealedPair()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { io.Copy(b, io.LimitReader(b, 1<<20)) }()
	p := bytes.Repeat([]byte{0xAB}, 1<<20)
	go func() { a.Write(p) }()
	got := make([]byte, len(p))
	stop := context.AfterFunc(ctx, func() { a.Close() })
	defer stop()
	if _, err := io.ReadFull(a, got); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("duplex echo failed: %v", err)
	}
}

// FuzzSealedRecords feeds arbitrary bytes to the record reader: it must
// return data or an error, never panic or allocate beyond one record; a
// stream made only of valid records reads back what was sealed.
func FuzzSealedRecords(f *testing.F) {
	f.Add(sealRecords([]byte("a")), false)
	f.Add(sealRecords([]byte("x"), []byte("yz")), true)
	f.Add([]byte{0, 0, 0, 16}, false)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, false)
	f.Fuzz(func(t *testing.T, stream []byte, asPayload bool) {
		if asPayload {
			if len(stream) > MaxAuthRecord+64 {
				return
			}
			got, err := io.ReadAll(readerConn(sealRecords(stream)))
			if err != nil || !bytes.Equal(got, stream) {
				t.Fatalf("round trip of %d bytes: %v", len(stream), err)
			}
			return
		}
		r := readerConn(stream)
		defer r.Close()
		got, _ := io.ReadAll(r)
		if len(got) > len(stream) {
			t.Fatalf("read %d bytes from a %d-byte stream", len(got), len(stream))
		}
		if cap(r.rdata) > MaxAuthRecord+authTagSize {
			t.Fatalf("record buffer grew to %d", cap(r.rdata))
		}
	})
}

// TestAuthStreamAcceptsAnyInstalledKey: while a cluster rotates its
// cookie, nodes prove with different primaries; an acceptor takes a
// stream proven with any cookie of its keyring, and refuses it again once
// that cookie is removed.
func TestAuthStreamAcceptsAnyInstalledKey(t *testing.T) {
	checkLeaks(t)
	b := startKernel(t, func(c *Config) { c.Cookie, c.Keys = cookieOld, []string{cookieNew} })
	ln, err := b.ListenAuth(testAuthProto)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := authEcho(t, ln)
	a := startKernel(t, func(c *Config) { c.Cookie = cookieNew })
	c, err := a.DialAuth(ctxT(t), b.Addr().String(), testAuthProto)
	if err != nil {
		t.Fatalf("DialAuth proven with an installed, non-primary cookie: %v", err)
	}
	roundTrip(t, c, []byte("rotating"))
	c.Close()
	if err := b.Keyring().Remove(cookieNew); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DialAuth(ctxT(t), b.Addr().String(), testAuthProto); !errors.Is(err, ErrAuthHandshake) {
		t.Fatalf("DialAuth with a removed cookie = %v, want ErrAuthHandshake", err)
	}
	ln.Close()
	<-done
}
