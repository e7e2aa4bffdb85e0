package kernel

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/internal/wire"
)

// rawPeer is a hand-driven connection to a kernel after a real hello.
type rawPeer struct {
	c   net.Conn
	s   *session // keys and sequence numbers from the handshake
	seq uint64
}

// dialRaw opens a kernel connection to k and performs the hello with the
// given cookie (the handshake may fail, then s is nil).
func dialRaw(t *testing.T, k *Kernel, cookie string) (*rawPeer, error) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Cookie = cookie
	cfg.Node.Port = 9
	evil, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.cfg.Dial(context.Background(), "tcp", k.Self().Addr()) // a memNet's too
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte{ProtoKernel})
	s, err := evil.handshake(c, true, time.Now().Add(5*time.Second))
	return &rawPeer{c: c, s: s}, err
}

// record builds the next authenticated record carrying payload.
func (p *rawPeer) record(payload []byte) []byte {
	rec := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	rec = append(rec, payload...)
	rec = appendMAC(p.s.sendMAC, rec, p.seq, rec[:4], payload)
	p.seq++
	return rec
}

func frame(e *wire.Envelope) []byte { return wire.AppendFrame(nil, e) }

// victim starts a kernel with a counting handler "h" and a good peer that
// keeps calling it. check asserts the handler saw nothing from the raw
// peer and that the good peer still gets answers.
func victim(t *testing.T, opt func(*Config)) (k *Kernel, hits *atomic.Int64, check func()) {
	checkLeaks(t)
	good := startKernel(t, opt)
	k = startKernel(t, opt)
	hits = new(atomic.Int64)
	k.Register("h", HandlerFunc(func(m Message) {
		if m.From.Node.ID != good.Self().ID {
			hits.Add(1)
		}
		if m.From.IsCall() {
			k.Reply(m.From, m.Data)
		}
	}))
	connect(t, good, k)
	check = func() {
		t.Helper()
		for range 3 {
			if got, err := good.Call(ctxT(t), k.Self(), "h", []byte("ok")); err != nil || string(got) != "ok" {
				t.Fatalf("good peer Call = %q, %v", got, err)
			}
		}
		if n := hits.Load(); n != 0 {
			t.Fatalf("handler reached %d times by bad input", n)
		}
	}
	return k, hits, check
}

func validMsg() []byte { return frame(&wire.Envelope{Kind: wire.KindMsg, ID: "h", Data: []byte("x")}) }

func TestBadInputRecords(t *testing.T) {
	tests := []struct {
		name string
		send func(p *rawPeer) []byte
		stat func(Stats) uint64
	}{
		{"tampered", func(p *rawPeer) []byte {
			r := p.record(validMsg())
			r[len(r)-40] ^= 1
			return r
		}, func(s Stats) uint64 { return s.RejectedBadMAC }},
		{"wrong MAC", func(p *rawPeer) []byte {
			r := p.record(validMsg())
			r[len(r)-1] ^= 1
			return r
		}, func(s Stats) uint64 { return s.RejectedBadMAC }},
		{"reordered", func(p *rawPeer) []byte {
			r0 := p.record(validMsg())
			r1 := p.record(validMsg())
			_ = r0
			return r1
		}, func(s Stats) uint64 { return s.RejectedBadMAC }},
		{"truncated", func(p *rawPeer) []byte {
			r := p.record(validMsg())
			return r[:len(r)-5]
		}, func(s Stats) uint64 { return s.RejectedBadFrame }},
		{"too large", func(p *rawPeer) []byte {
			return binary.BigEndian.AppendUint32(nil, uint32(DefaultMaxFrameSize+100))
		}, func(s Stats) uint64 { return s.RejectedTooLarge }},
		{"garbage", func(p *rawPeer) []byte {
			return []byte("\x00\x00\x00\x10GARBAGEGARBAGE!!" + string(make([]byte, 32)))
		}, func(s Stats) uint64 { return s.RejectedBadMAC }},
		{"malformed envelope", func(p *rawPeer) []byte {
			return p.record([]byte("\x00\x00\x00\x03\x96\x01\xff"))
		}, func(s Stats) uint64 { return s.RejectedBadFrame }},
		{"unknown kind", func(p *rawPeer) []byte {
			return p.record(frame(&wire.Envelope{Kind: 99, ID: "h"}))
		}, func(s Stats) uint64 { return s.RejectedBadFrame }},
		{"frame over limit in record", func(p *rawPeer) []byte {
			return p.record(binary.BigEndian.AppendUint32(nil, uint32(DefaultMaxFrameSize+1)))
		}, func(s Stats) uint64 { return s.RejectedTooLarge }},
		{"good frame then malformed in one record", func(p *rawPeer) []byte {
			return p.record(append(validMsg(), 0, 0, 0, 1, 0xc1))
		}, func(s Stats) uint64 { return s.RejectedBadFrame }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _, check := victim(t, nil)
			p, err := dialRaw(t, k, testCookie)
			if err != nil {
				t.Fatalf("hello: %v", err)
			}
			p.c.Write(tt.send(p))
			if tt.name == "truncated" {
				p.c.(*net.TCPConn).CloseWrite()
			}
			waitFor(t, "rejection counted", func() bool { return tt.stat(k.Stats()) == 1 })
			// The kernel closed the connection.
			p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := p.c.Read(make([]byte, 1)); err == nil {
				t.Fatal("connection still open after bad input")
			}
			check()
		})
	}
}

func TestBadInputReplay(t *testing.T) {
	k, hits, check := victim(t, nil)
	p, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	rec := p.record(validMsg())
	p.c.Write(rec)
	waitFor(t, "first delivery", func() bool { return hits.Load() == 1 })
	hits.Store(0)
	p.c.Write(rec) // replayed
	waitFor(t, "replay rejected", func() bool { return k.Stats().RejectedBadMAC == 1 })
	// A replay onto a fresh connection fails too: keys are per session.
	p2, err := dialRaw(t, k, testCookie)
	if err != nil {
		t.Fatal(err)
	}
	p2.c.Write(rec)
	waitFor(t, "cross-session replay rejected", func() bool { return k.Stats().RejectedBadMAC == 2 })
	check()
}

func TestBadInputWrongCookie(t *testing.T) {
	k, _, check := victim(t, nil)
	if _, err := dialRaw(t, k, "not-the-kernel-test-cookie"); err == nil {
		t.Fatal("handshake with a wrong cookie succeeded")
	}
	waitFor(t, "handshake rejection", func() bool { return k.Stats().RejectedHandshake == 1 })
	check()
}

func TestBadInputInsecurePeer(t *testing.T) {
	k, _, check := victim(t, nil)
	cfg := testConfig(t)
	cfg.Cookie, cfg.Insecure = "", true
	ins, _ := New(cfg)
	if err := ins.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	ins.Connect(k.Self())
	waitFor(t, "handshake rejection", func() bool { return k.Stats().RejectedHandshake >= 1 })
	if ins.Connected(k.Self().ID) {
		t.Fatal("insecure peer connected to a secure node")
	}
	check()
}

func TestBadInputConnections(t *testing.T) {
	opt := func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond }
	tests := []struct {
		name  string
		bytes []byte
		stat  func(Stats) uint64
	}{
		{"silent", nil, func(s Stats) uint64 { return s.RejectedUnknownProto }},
		{"unknown protocol", []byte{'Z', 1, 2, 3}, func(s Stats) uint64 { return s.RejectedUnknownProto }},
		{"silent after kernel byte", []byte{ProtoKernel}, func(s Stats) uint64 { return s.RejectedHandshake }},
		{"garbage hello", append([]byte{ProtoKernel}, "\x00\x00\x00\x05hello"...), func(s Stats) uint64 { return s.RejectedHandshake }},
		{"huge hello", append([]byte{ProtoKernel}, "\x7f\x00\x00\x05"...), func(s Stats) uint64 { return s.RejectedHandshake }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, _, check := victim(t, opt)
			c, err := net.Dial("tcp", k.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(tt.bytes)
			waitFor(t, "rejection counted", func() bool { return tt.stat(k.Stats()) == 1 })
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, err := c.Read(make([]byte, 64)); err != nil {
					break
				}
			}
			check()
		})
	}
}

func TestRemoteCannotTargetReserved(t *testing.T) {
	a, b := pair(t, false, nil)
	if err := b.Register("$x", HandlerFunc(func(Message) {})); err == nil {
		t.Fatal("reserved name registered")
	}
	_, err := a.Call(ctxT(t), b.Self(), "_kernel.x", nil)
	if !isRemoteCode(err, CodeUnknownName) {
		t.Fatalf("call to reserved name: %v", err)
	}
	_ = notp.Node{}
}

func isRemoteCode(err error, code string) bool {
	re, ok := err.(*RemoteError)
	return ok && re.Code == code
}
