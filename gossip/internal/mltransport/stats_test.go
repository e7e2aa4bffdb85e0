package mltransport

import (
	"github.com/notp-go/notp/internal/testutil"
	"io"
	"testing"
	"time"
)

// sub returns a-b field by field.
func (a Stats) sub(b Stats) Stats {
	return Stats{
		PacketsIn: a.PacketsIn - b.PacketsIn, PacketsOut: a.PacketsOut - b.PacketsOut,
		PacketBytesIn: a.PacketBytesIn - b.PacketBytesIn, PacketBytesOut: a.PacketBytesOut - b.PacketBytesOut,
		StreamsIn: a.StreamsIn - b.StreamsIn, StreamsOut: a.StreamsOut - b.StreamsOut,
		StreamBytesIn: a.StreamBytesIn - b.StreamBytesIn, StreamBytesOut: a.StreamBytesOut - b.StreamBytesOut,
	}
}

// The tests of this package do not run in parallel, so the process-wide
// counters move only by what a test does.
func TestStats(t *testing.T) {
	testutil.CheckLeaks(t)
	total0 := TotalStats()
	a, b := newNode(t, kernelConfig(t, "a", "c")), newNode(t, kernelConfig(t, "b", "c"))
	if s := a.tr.Stats(); s != (Stats{}) {
		t.Fatalf("new transport's Stats = %+v, want zero", s)
	}

	// Packets: 3 datagrams of 1, 100 and 1000 bytes from a to b.
	for _, n := range []int{1, 100, 1000} {
		if _, err := a.tr.WriteTo(make([]byte, n), b.k.Self().Addr()); err != nil {
			t.Fatal(err)
		}
		recvPacket(t, b.tr)
	}
	if _, err := a.tr.WriteTo([]byte("x"), "no-port"); err == nil {
		t.Fatal("WriteTo an address without a port succeeded")
	}
	wantA := Stats{PacketsOut: 3, PacketBytesOut: 1101}
	wantB := Stats{PacketsIn: 3, PacketBytesIn: 1101}
	if got := a.tr.Stats(); got != wantA {
		t.Fatalf("sender Stats = %+v, want %+v", got, wantA)
	}
	if got := b.tr.Stats(); got != wantB {
		t.Fatalf("receiver Stats = %+v, want %+v", got, wantB)
	}

	// Streams: a dials b, writes 4 bytes, b answers 6 and closes.
	c, err := a.tr.DialTimeout(b.k.Self().Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	s := recvStream(t, b.tr)
	buf := make([]byte, 4)
	if _, err := io.ReadFull(s, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("pong!!")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got, err := io.ReadAll(c); err != nil || string(got) != "pong!!" {
		t.Fatalf("client read %q, %v", got, err)
	}
	wantA.StreamsOut, wantA.StreamBytesOut, wantA.StreamBytesIn = 1, 4, 6
	wantB.StreamsIn, wantB.StreamBytesIn, wantB.StreamBytesOut = 1, 4, 6
	if got := a.tr.Stats(); got != wantA {
		t.Fatalf("dialer Stats = %+v, want %+v", got, wantA)
	}
	if got := b.tr.Stats(); got != wantB {
		t.Fatalf("acceptor Stats = %+v, want %+v", got, wantB)
	}

	// The process-wide counters moved by exactly the sum of both.
	want := Stats{PacketsIn: 3, PacketsOut: 3, PacketBytesIn: 1101, PacketBytesOut: 1101,
		StreamsIn: 1, StreamsOut: 1, StreamBytesIn: 10, StreamBytesOut: 10}
	if got := TotalStats().sub(total0); got != want {
		t.Fatalf("TotalStats moved by %+v, want %+v", got, want)
	}

	// Counters survive Shutdown, and a shut-down transport counts nothing
	// more.
	if err := a.tr.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.tr.WriteTo([]byte("x"), b.k.Self().Addr()); err == nil {
		t.Fatal("WriteTo after Shutdown succeeded")
	}
	if got := a.tr.Stats(); got != wantA {
		t.Fatalf("Stats after Shutdown = %+v, want %+v", got, wantA)
	}
}

// Over a real memberlist exchange (a join is a push/pull stream, probes
// are packets) both sides count traffic, and what one side sends the
// other receives.
func TestStatsMemberlist(t *testing.T) {
	testutil.CheckLeaks(t)
	a, b := startMember(t, "a", "c"), startMember(t, "b", "c")
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
	// A sender counts a packet after its write returns, which may be
	// after the receiver counted it: wait for both sides.
	testutil.WaitFor(t, "probes both ways", func() bool {
		sa, sb := a.tr.Stats(), b.tr.Stats()
		return sa.PacketsIn > 0 && sb.PacketsIn > 0 && sa.PacketBytesOut > 0 && sb.PacketBytesOut > 0
	})
	sa, sb := a.tr.Stats(), b.tr.Stats()
	if sb.StreamsOut == 0 || sa.StreamsIn == 0 {
		t.Fatalf("the join's stream was not counted: a %+v, b %+v", sa, sb)
	}
	if sb.StreamBytesOut == 0 || sa.StreamBytesIn == 0 || sa.StreamBytesOut == 0 || sb.StreamBytesIn == 0 {
		t.Fatalf("push/pull bytes not counted both ways: a %+v, b %+v", sa, sb)
	}
	if sa.PacketBytesOut == 0 || sb.PacketBytesOut == 0 {
		t.Fatalf("probe bytes not counted: a %+v, b %+v", sa, sb)
	}
}

func TestStatsAdd(t *testing.T) {
	a := Stats{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	b := Stats{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100}
	want := Stats{101, 202, 303, 404, 505, 606, 707, 808, 909, 1010, 1111}
	if got := a.Add(b); got != want {
		t.Fatalf("Add = %+v, want %+v", got, want)
	}
	if got := (Stats{}).Add(a); got != a {
		t.Fatalf("zero.Add(a) = %+v, want %+v", got, a)
	}
}
