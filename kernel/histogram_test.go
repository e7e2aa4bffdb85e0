package kernel

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Calls and casts are counted apart on both ends, and every call, local,
// remote or failed, lands in the latency histogram.
func TestCallCastCounters(t *testing.T) {
	checkLeaks(t)
	a, b := pair(t, false, nil)
	echo(t, a, "echo")
	echo(t, b, "echo")
	got := make(chan struct{}, 16)
	if err := b.Register("sink", HandlerFunc(func(Message) { got <- struct{}{} })); err != nil {
		t.Fatal(err)
	}
	const calls, casts = 7, 3
	var wg sync.WaitGroup
	for range calls - 2 {
		wg.Go(func() { mustCall(t, a, b) })
	}
	wg.Wait()
	mustCall(t, a, a) // local
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := a.Call(ctx, b.Self(), "nobody", nil); err == nil {
		t.Fatal("call to an unregistered name succeeded")
	}
	for range casts {
		if err := a.Cast(b.Self(), "sink", nil); err != nil {
			t.Fatal(err)
		}
	}
	for range casts {
		<-got
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.Calls != calls || sa.Casts != casts {
		t.Errorf("a made %d calls and %d casts, want %d and %d", sa.Calls, sa.Casts, calls, casts)
	}
	if sb.CallsHandled != calls-1 || sb.CastsHandled != casts || sa.CallsHandled != 1 {
		t.Errorf("handled: b %d calls and %d casts, a %d calls; want %d, %d, 1", sb.CallsHandled, sb.CastsHandled, sa.CallsHandled, calls-1, casts)
	}
	h := sa.CallLatency
	if h.Count != calls || h.Sum <= 0 || len(h.Counts) != len(h.Bounds)+1 {
		t.Errorf("call latency histogram %+v, want %d observations", h, calls)
	}
	if sb.CallLatency.Count != 0 {
		t.Errorf("b made no call but its histogram holds %d", sb.CallLatency.Count)
	}
}
