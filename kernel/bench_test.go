package kernel

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync/atomic"
	"testing"
)

func BenchmarkBatchMAC(b *testing.B) {
	m := hmac.New(sha256.New, make([]byte, 32))
	payload := make([]byte, 64<<10)
	hdr := make([]byte, 4)
	dst := make([]byte, 0, 32)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		dst = appendMAC(m, dst[:0], seq, hdr, payload)
		seq++
	}
}

func BenchmarkCallLocal(b *testing.B) {
	k := startKernel(b, nil)
	echo(b, k, "echo")
	ctx := ctxT(b)
	data := []byte("ping")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Call(ctx, k.Self(), "echo", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallLoopback(b *testing.B) {
	a, k := pair(b, false, nil)
	echo(b, k, "echo")
	ctx := ctxT(b)
	data := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Call(ctx, k.Self(), "echo", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallLoopbackParallel(b *testing.B) {
	a, k := pair(b, false, nil)
	echo(b, k, "echo")
	ctx := ctxT(b)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		data := make([]byte, 64)
		for pb.Next() {
			if _, err := a.Call(ctx, k.Self(), "echo", data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCastLoopback(b *testing.B) {
	a, k := pair(b, false, nil)
	var n atomic.Int64
	k.Register("sink", HandlerFunc(func(Message) { n.Add(1) }))
	data := make([]byte, 64)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.Cast(k.Self(), "sink", data)
		i++
	}
	waitFor(b, "casts delivered", func() bool { return n.Load() == int64(i) })
}
