package kernel

import (
	"runtime"
	"sync/atomic"
	"testing"
)

func BenchmarkBatchMAC(b *testing.B) {
	m := newRecordMAC(make([]byte, 32))
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
	benchParallelCalls(b, a, k, "echo")
}

// benchParallelCalls makes 64-byte calls from a to name on k from 32
// goroutines per CPU and reports the writes per call (both directions):
// how well busy connections batch.
func benchParallelCalls(b *testing.B, a, k *Kernel, name string) {
	ctx := ctxT(b)
	b.SetParallelism(32)
	b.ReportAllocs()
	before := a.Stats().RecordsOut + k.Stats().RecordsOut
	b.RunParallel(func(pb *testing.PB) {
		data := make([]byte, 64)
		for pb.Next() {
			if _, err := a.Call(ctx, k.Self(), name, data); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(a.Stats().RecordsOut+k.Stats().RecordsOut-before)/float64(b.N), "writes/op")
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

// Like BenchmarkCallLoopbackParallel, but replies come from an actor
// goroutine (as with package genserver), not from the connection reader.
func BenchmarkCallLoopbackParallelActor(b *testing.B) {
	a, k := pair(b, false, nil)
	mailbox := make(chan Message, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range mailbox {
			k.Reply(m.From, m.Data)
		}
	}()
	defer func() { close(mailbox); <-done }()
	k.Register("actor", HandlerFunc(func(m Message) { mailbox <- m }))
	benchParallelCalls(b, a, k, "actor")
}

// BenchmarkLinkMemory reports the heap one idle, used connection costs:
// kernels in a full mesh (every pair linked both ways, so each pair has
// two connections and each connection two sessions' state in this
// process) that have each made a call over every link. ns/op is the time
// to build, use and close such a mesh (the timer runs throughout, so that
// the loop stops after a few meshes).
func BenchmarkLinkMemory(b *testing.B) {
	const n = 12
	for b.Loop() {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		ks := make([]*Kernel, n)
		for i := range ks {
			ks[i] = startKernel(b, nil)
			echo(b, ks[i], "echo")
		}
		for i, a := range ks {
			for j, c := range ks {
				if i != j {
					connect(b, a, c)
				}
			}
		}
		ctx := ctxT(b)
		for i, a := range ks {
			for j, c := range ks {
				if i != j {
					if _, err := a.Call(ctx, c.Self(), "echo", make([]byte, 64)); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		conns := n * (n - 1) // each ordered pair dials once
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(conns), "heap-B/conn")
		for _, k := range ks {
			k.Close()
		}
	}
}
