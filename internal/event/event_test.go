package event

import (
	"sync"
	"testing"
)

// A zero or negative buffer gets DefaultBuffer slots, so a burst of that
// many values reaches a reader that was not yet waiting.
func TestZeroBufferGetsDefault(t *testing.T) {
	for _, buf := range []int{0, -5} {
		var b Bus[int]
		ch, cancel := b.Subscribe(buf)
		for i := range DefaultBuffer {
			b.Publish(i)
		}
		if got := len(ch); got != DefaultBuffer {
			t.Errorf("Subscribe(%d): %d values buffered, want %d", buf, got, DefaultBuffer)
		}
		if b.Dropped() != 0 {
			t.Errorf("Subscribe(%d): %d dropped", buf, b.Dropped())
		}
		cancel()
	}
}

// Publish never blocks: a full channel loses the value, which is counted
// per call and in total, while other subscribers still get it.
func TestFullChannelDropsAndCounts(t *testing.T) {
	var b Bus[string]
	small, cancelSmall := b.Subscribe(1)
	defer cancelSmall()
	big, cancelBig := b.Subscribe(10)
	defer cancelBig()
	if n := b.Publish("a"); n != 0 {
		t.Fatalf("first Publish dropped %d", n)
	}
	if n := b.Publish("b"); n != 1 {
		t.Fatalf("second Publish dropped %d, want 1", n)
	}
	if b.Dropped() != 1 || len(small) != 1 || len(big) != 2 {
		t.Fatalf("dropped %d, small %d, big %d", b.Dropped(), len(small), len(big))
	}
	if v := <-small; v != "a" {
		t.Fatalf("small got %q, want the first value", v)
	}
	if got := []string{<-big, <-big}; got[0] != "a" || got[1] != "b" {
		t.Fatalf("big got %v, want publication order", got)
	}
}

// cancel closes the channel once, stops deliveries, and may be called
// again; the buffer is capped at MaxBuffer.
func TestCancel(t *testing.T) {
	var b Bus[int]
	ch, cancel := b.Subscribe(MaxBuffer * 4)
	if cap(ch) != MaxBuffer {
		t.Fatalf("capacity %d, want MaxBuffer", cap(ch))
	}
	b.Publish(1)
	cancel()
	cancel()
	b.Publish(2)
	if v, ok := <-ch; !ok || v != 1 {
		t.Fatalf("buffered value %d, %v", v, ok)
	}
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	if b.Subscribers() != 0 {
		t.Fatalf("%d subscribers after cancel", b.Subscribers())
	}
}

// Publishing while subscriptions come and go neither races nor sends on
// a closed channel.
func TestConcurrentPublishCancel(t *testing.T) {
	var b Bus[int]
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				b.Publish(i)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 200 {
				ch, cancel := b.Subscribe(2)
				<-ch
				cancel()
			}
		})
	}
	// Keep the readers fed once the publishers are done.
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			default:
				b.Publish(-1)
			}
		}
	}()
	wg.Wait()
	close(done)
	if b.Subscribers() != 0 {
		t.Fatalf("%d subscribers left", b.Subscribers())
	}
}
