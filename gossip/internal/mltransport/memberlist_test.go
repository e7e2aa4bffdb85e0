package mltransport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/notp-go/notp/internal/testcert"
	"github.com/notp-go/notp/kernel"
)

// join joins m to seed's kernel address.
func join(t *testing.T, m, seed *member) {
	t.Helper()
	if n, err := m.ml.Join([]string{seed.addr()}); err != nil || n != 1 {
		t.Fatalf("%s joins %s: %d, %v", m.k.Self().ID, seed.k.Self().ID, n, err)
	}
}

// converged waits until every member sees exactly the names want.
func converged(t *testing.T, ms []*member, want ...string) {
	t.Helper()
	slices.Sort(want)
	for _, m := range ms {
		waitFor(t, fmt.Sprintf("%s sees %v", m.k.Self().ID, want), func() bool {
			got := m.names()
			slices.Sort(got)
			return slices.Equal(got, want)
		})
	}
}

func TestMemberlistTwoNodes(t *testing.T) {
	checkLeaks(t)
	a, b := startMember(t, "a", "c"), startMember(t, "b", "c")
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
	// memberlist learned the kernel's address for each node.
	for _, n := range a.ml.Members() {
		want := map[string]*member{"a": a, "b": b}[n.Name].addr()
		if n.Address() != want {
			t.Errorf("member %s at %s, want the kernel address %s", n.Name, n.Address(), want)
		}
	}
	if a.tr.streamsIn.Load() == 0 {
		t.Fatal("the join reached a without a stream")
	}
	// Probes are UDP packets, both ways.
	waitFor(t, "probe packets", func() bool { return a.tr.packetsIn.Load() > 0 && b.tr.packetsIn.Load() > 0 })
}

func TestMemberlistThreeNodes(t *testing.T) {
	checkLeaks(t)
	a, b, c := startMember(t, "a", "c"), startMember(t, "b", "c"), startMember(t, "c", "c")
	join(t, b, a)
	join(t, c, b) // c learns a only through gossip
	converged(t, []*member{a, b, c}, "a", "b", "c")
}

func TestMemberlistTLS(t *testing.T) {
	checkLeaks(t)
	tc := testcert.New(t).Config
	var ms []*member
	for _, id := range []string{"a", "b"} {
		cfg := kernelConfig(t, id, "c")
		cfg.TLS = tc
		n := newNode(t, cfg)
		m := &member{node: n, log: newLogSink(t), events: &eventLog{}}
		ml, err := memberlistCreate(t, n, "c", m)
		if err != nil {
			t.Fatal(err)
		}
		m.ml = ml
		ms = append(ms, m)
	}
	join(t, ms[1], ms[0])
	converged(t, ms, "a", "b")
}

// With an empty cookie (insecure kernels) gossip runs unencrypted.
func TestMemberlistInsecure(t *testing.T) {
	checkLeaks(t)
	a, b := startMember(t, "a", ""), startMember(t, "b", "")
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
	// An encrypted node cannot join them either.
	x := startMember(t, "x", "c")
	if _, err := x.ml.Join([]string{a.addr()}); err == nil {
		t.Fatal("an encrypted node joined an unencrypted cluster")
	}
	converged(t, []*member{a, b}, "a", "b")
}

// A node with another cookie derives another key and cannot join.
func TestMemberlistWrongCookie(t *testing.T) {
	checkLeaks(t)
	a, b := startMember(t, "a", "c"), startMember(t, "b", "c")
	join(t, b, a)
	x := startMember(t, "x", "other")
	if n, err := x.ml.Join([]string{a.addr()}); err == nil {
		t.Fatalf("join with a wrong cookie succeeded (%d contacted)", n)
	}
	// a rejected the push/pull because it could not decrypt it.
	waitFor(t, "a logs the decryption failure", func() bool { return a.log.contains("decrypt") })
	converged(t, []*member{a, b}, "a", "b")
	if got := x.names(); len(got) != 1 {
		t.Fatalf("x sees %v, want itself only", got)
	}
	// x's gossip packets to a are rejected too.
	if err := x.ml.SendBestEffort(a.ml.LocalNode(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a rejects x's packet", func() bool { return a.log.contains("Decrypt packet failed") })
	if got := a.names(); len(got) != 2 {
		t.Fatalf("a sees %v after x's packet", got)
	}
}

// A node that stops without leaving is eventually reported dead.
func TestMemberlistDeadNode(t *testing.T) {
	checkLeaks(t)
	a, b, c := startMember(t, "a", "c"), startMember(t, "b", "c"), startMember(t, "c", "c")
	join(t, b, a)
	join(t, c, a)
	converged(t, []*member{a, b, c}, "a", "b", "c")
	c.ml.Shutdown() // no Leave: a crash as far as the others know
	c.k.Close()
	converged(t, []*member{a, b}, "a", "b")
	waitFor(t, "a reports c left", func() bool { return a.events.hasLeft("c") })
	waitFor(t, "b reports c left", func() bool { return b.events.hasLeft("c") })
}

// A node that leaves is reported left at once.
func TestMemberlistLeave(t *testing.T) {
	checkLeaks(t)
	a, b, c := startMember(t, "a", "c"), startMember(t, "b", "c"), startMember(t, "c", "c")
	join(t, b, a)
	join(t, c, b)
	converged(t, []*member{a, b, c}, "a", "b", "c")
	if err := c.ml.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	c.ml.Shutdown()
	waitFor(t, "a reports c left", func() bool { return a.events.hasLeft("c") })
	waitFor(t, "b reports c left", func() bool { return b.events.hasLeft("c") })
	converged(t, []*member{a, b}, "a", "b")
}

// Kernel calls share the port with memberlist's streams and packets.
func TestKernelTrafficAlongside(t *testing.T) {
	checkLeaks(t)
	a, b := startMember(t, "a", "c"), startMember(t, "b", "c")
	err := b.k.Register("echo", kernel.HandlerFunc(func(m kernel.Message) { b.k.Reply(m.From, m.Data) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.k.Connect(b.k.Self()); err != nil {
		t.Fatal(err)
	}
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
	// Call until several push/pull streams (every 200 ms) flowed meanwhile.
	start := b.tr.streamsIn.Load() + a.tr.streamsIn.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; b.tr.streamsIn.Load()+a.tr.streamsIn.Load() < start+4; i++ {
		msg := []byte(fmt.Sprint("call ", i))
		got, err := a.k.Call(ctx, b.k.Self(), "echo", msg)
		if err != nil || string(got) != string(msg) {
			t.Fatalf("Call %d = %q, %v", i, got, err)
		}
	}
	if got := a.names(); len(got) != 2 {
		t.Fatalf("a sees %v", got)
	}
}

// Garbage packets and streams reach memberlist, which drops them; the node
// keeps working. Without a key (insecure) the garbage reaches memberlist's
// message decoders instead of stopping at decryption.
func TestGarbageInput(t *testing.T) {
	for _, cookie := range []string{"c", ""} {
		t.Run(fmt.Sprintf("cookie=%q", cookie), func(t *testing.T) {
			checkLeaks(t)
			garbage(t, cookie)
		})
	}
}

func garbage(t *testing.T, cookie string) {
	a := startMember(t, "a", cookie)
	g := newNode(t, kernelConfig(t, "g", cookie)) // a plain transport sending garbage
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		size := 1 + rng.IntN(2000)
		if i%50 == 0 {
			size = 65507
		}
		buf := make([]byte, size)
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		if i%2 == 0 {
			buf[0] = byte(i % 16) // plausible memberlist message types
		}
		if _, err := g.tr.WriteTo(buf, a.addr()); err != nil {
			t.Fatal(err)
		}
		if i%20 == 0 {
			c, err := g.tr.DialTimeout(a.addr(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.Write(buf[:min(len(buf), 4096)])
			c.Close()
		}
	}
	// Loopback UDP may drop some of a burst; most arrive.
	waitFor(t, "a read the garbage", func() bool { return a.tr.packetsIn.Load() >= 100 && a.tr.streamsIn.Load() >= 10 })
	b := startMember(t, "b", cookie)
	join(t, b, a)
	converged(t, []*member{a, b}, "a", "b")
}
