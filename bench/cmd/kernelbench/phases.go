package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is the outcome of one system's run; it is printed as one JSON object.
type Result struct {
	System       string      `json:"system"`
	Config       string      `json:"config"`
	PayloadBytes int         `json:"payload_bytes"`
	GOMAXPROCS   int         `json:"gomaxprocs"`
	Seq          SeqResult   `json:"sequential"`
	Concurrent   ConcResult  `json:"concurrent"`
	Casts        CastsResult `json:"casts"`
	Error        string      `json:"error,omitempty"`
}

// SeqResult is the sequential call phase: one caller, one call at a time.
type SeqResult struct {
	Calls       int     `json:"calls"`
	P50us       float64 `json:"p50_us"`
	P99us       float64 `json:"p99_us"`
	CallsPerSec float64 `json:"calls_per_sec"`
}

// ConcResult is the concurrent call phase.
type ConcResult struct {
	Callers     int     `json:"callers"`
	Calls       int64   `json:"calls"`
	CallsPerSec float64 `json:"calls_per_sec"`
}

// CastsResult is the cast phase, counted at the receiver.
type CastsResult struct {
	Sent        int64   `json:"sent"`
	Received    int64   `json:"received"`
	CastsPerSec float64 `json:"casts_per_sec"`
}

// callTimeout bounds the calls of a phase beyond its duration, so that a lost
// reply cannot hang it. One deadline serves a whole phase: a context per call
// would add its timer's cost (~0.8 µs of client CPU) to every system's calls.
const callTimeout = 10 * time.Second

// drainTimeout bounds how long the client waits, after the last cast was
// sent, for the server to have received them all.
const drainTimeout = 10 * time.Second

// runPhases runs warm-up, the sequential, concurrent and cast phases and fills
// res. It stops at the first error.
func runPhases(ctx context.Context, cl client, payload []byte, o options, res *Result) error {
	wctx, cancel := context.WithTimeout(ctx, o.duration+callTimeout)
	defer cancel()
	for i := 0; i < o.warmup; i++ {
		if err := call(wctx, cl, payload); err != nil {
			return fmt.Errorf("warm-up call: %w", err)
		}
	}
	var err error
	if res.Seq, err = seqPhase(ctx, cl, payload, o.n, o.duration); err != nil {
		return fmt.Errorf("sequential calls: %w", err)
	}
	if res.Concurrent, err = concPhase(ctx, cl, payload, o.callers, o.n, o.duration); err != nil {
		return fmt.Errorf("concurrent calls: %w", err)
	}
	// Warm the cast path, then let it drain so the phase starts idle.
	if o.warmup > 0 {
		if _, err := castPhase(ctx, cl, payload, o.warmup, o.duration); err != nil {
			return fmt.Errorf("warm-up casts: %w", err)
		}
	}
	if res.Casts, err = castPhase(ctx, cl, payload, o.casts, o.duration); err != nil {
		return fmt.Errorf("casts: %w", err)
	}
	return nil
}

// call makes one call; ctx carries the deadline of its phase.
func call(ctx context.Context, cl client, payload []byte) error {
	return cl.Call(ctx, payload)
}

// seqPhase makes up to n calls one after another, stopping after d.
func seqPhase(ctx context.Context, cl client, payload []byte, n int, d time.Duration) (SeqResult, error) {
	lat := make([]time.Duration, 0, n)
	ctx, cancel := context.WithTimeout(ctx, d+callTimeout)
	defer cancel()
	start := time.Now()
	deadline := start.Add(d)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if !t0.Before(deadline) || ctx.Err() != nil {
			break
		}
		if err := call(ctx, cl, payload); err != nil {
			return SeqResult{}, err
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	if len(lat) == 0 {
		return SeqResult{}, errors.New("no call completed")
	}
	slices.Sort(lat)
	return SeqResult{
		Calls:       len(lat),
		P50us:       micros(percentile(lat, 0.50)),
		P99us:       micros(percentile(lat, 0.99)),
		CallsPerSec: rate(int64(len(lat)), elapsed),
	}, nil
}

// concPhase runs callers goroutines that share up to n calls, stopping after d.
func concPhase(ctx context.Context, cl client, payload []byte, callers, n int, d time.Duration) (ConcResult, error) {
	var (
		issued atomic.Int64
		done   atomic.Int64
		wg     sync.WaitGroup
		once   sync.Once
		first  error
	)
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ctx, cancelCalls := context.WithTimeout(ctx, d+callTimeout)
	defer cancelCalls()
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil && issued.Add(1) <= int64(n) {
				if err := call(ctx, cl, payload); err != nil {
					once.Do(func() { first = err })
					cancel()
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return ConcResult{}, first
	}
	if done.Load() == 0 {
		return ConcResult{}, errors.New("no call completed")
	}
	return ConcResult{Callers: callers, Calls: done.Load(), CallsPerSec: rate(done.Load(), elapsed)}, nil
}

// castPhase sends up to n casts (stopping after d), then asks the server for
// its count until it has received them all (or drainTimeout passes). The rate
// is the number received over the time from the first send to the server's
// clock when it reported the last one.
func castPhase(ctx context.Context, cl client, payload []byte, n int, d time.Duration) (CastsResult, error) {
	base, _, err := stats(ctx, cl)
	if err != nil {
		return CastsResult{}, err
	}
	start := time.Now()
	deadline := start.Add(d)
	var sent int64
	for sent < int64(n) {
		if sent&1023 == 0 && (ctx.Err() != nil || !time.Now().Before(deadline)) {
			break
		}
		if err := cl.Cast(payload); err != nil {
			return CastsResult{Sent: sent}, err
		}
		sent++
	}
	drainBy := time.Now().Add(drainTimeout)
	for {
		count, now, err := stats(ctx, cl)
		if err != nil {
			return CastsResult{Sent: sent}, err
		}
		got := count - base
		if got >= sent || !time.Now().Before(drainBy) || ctx.Err() != nil {
			res := CastsResult{Sent: sent, Received: got, CastsPerSec: rate(got, time.Duration(now-start.UnixNano()))}
			if got < sent {
				return res, fmt.Errorf("server received %d of %d casts", got, sent)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
}

func stats(ctx context.Context, cl client) (count, nowNano int64, err error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	return cl.CastStats(cctx)
}

// percentile returns the q-quantile of sorted (nearest rank).
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func micros(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)*10) / 10
}

func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n) / d.Seconds())
}
