package mltransport

import (
	"io"
	"testing"
	"time"

	"github.com/notp-go/notp/kernel"
)

// BenchmarkPacket measures one gossip-sized packet from WriteTo to
// PacketCh over loopback UDP.
func BenchmarkPacket(b *testing.B) {
	x, y := newNode(b, kernelConfig(b, "a", "c")), newNode(b, kernelConfig(b, "b", "c"))
	to := y.k.Self().Addr()
	msg := make([]byte, 1400)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := x.tr.WriteTo(msg, to); err != nil {
			b.Fatal(err)
		}
		select {
		case <-y.tr.PacketCh():
		case <-time.After(5 * time.Second):
			b.Fatal("packet lost on loopback")
		}
	}
}

// BenchmarkStream measures a stream dial through the kernel's mux, the
// hand-over to StreamCh and a one-byte round trip.
func BenchmarkStream(b *testing.B) {
	x, y := newNode(b, kernelConfig(b, "a", "c")), newNode(b, kernelConfig(b, "b", "c"))
	to := y.k.Self().Addr()
	buf := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		c, err := x.tr.DialTimeout(to, 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		s := <-y.tr.StreamCh()
		if _, err := s.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		s.Close()
		c.Close()
	}
}

func BenchmarkSecretKey(b *testing.B) {
	k, err := kernel.New(kernelConfig(b, "a", "c"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		SecretKey(k)
	}
}
