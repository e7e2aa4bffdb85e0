// Package event is the module's one event fan-out: a [Bus] hands each
// published value to every subscriber's buffered channel without ever
// blocking the publisher, and counts what a full channel lost. genserver
// (lifecycle events) and gossip (ring and health events) publish through
// it.
//
// # Concurrency
//
// Publish, Subscribe, the cancel functions and Dropped are safe for
// concurrent use. Publish holds the bus's lock while it offers the value
// to each channel (never waiting), so a subscriber sees values in
// publication order and a cancelled subscription receives nothing after
// its cancel returns.
package event

import (
	"sync"
	"sync/atomic"
)

// DefaultBuffer is the channel capacity of a subscription asked with a
// buffer ≤ 0. A subscription without room would lose every event its
// reader is not already waiting for, since Publish never blocks.
const DefaultBuffer = 64

// MaxBuffer caps a subscription's channel capacity, so that a caller's
// mistake cannot allocate an unbounded channel.
const MaxBuffer = 1 << 16

// Bus fans values of type T out to subscribers. The zero Bus is ready to
// use and must not be copied after first use.
type Bus[T any] struct {
	mu      sync.Mutex
	subs    map[chan T]struct{}
	dropped atomic.Uint64
}

// Subscribe returns a channel receiving every value published from now on
// with room for buf values (≤ 0: DefaultBuffer; at most MaxBuffer), and a
// cancel function that unsubscribes and closes the channel. cancel is
// idempotent. A value that finds the channel full is lost and counted
// (see Dropped): read promptly or ask for more room.
func (b *Bus[T]) Subscribe(buf int) (<-chan T, func()) {
	if buf <= 0 {
		buf = DefaultBuffer
	}
	ch := make(chan T, min(buf, MaxBuffer))
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[chan T]struct{})
	}
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, ch)
			close(ch)
			b.mu.Unlock()
		})
	}
}

// Publish offers v to every subscriber without blocking and returns how
// many full channels lost it.
func (b *Bus[T]) Publish(v T) (dropped int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- v:
		default:
			dropped++
		}
	}
	if dropped > 0 {
		b.dropped.Add(uint64(dropped))
	}
	return dropped
}

// Dropped returns how many deliveries full channels have lost since the
// bus was created.
func (b *Bus[T]) Dropped() uint64 { return b.dropped.Load() }

// Subscribers returns the number of open subscriptions.
func (b *Bus[T]) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
