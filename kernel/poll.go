package kernel

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Bounds of an adaptive reader's polling window (Config.BusyPoll 0). A
// reader whose socket stayed dry for longer than pollWindowMax stops
// polling at once; one whose wait (polling, then sleeping in the poller)
// ended within it grows its window, from pollWindowMin, doubling.
const (
	pollWindowMin = 10 * time.Microsecond
	pollWindowMax = 200 * time.Microsecond
)

// pollStartAfter is how many dry reads in a row must see their data within
// pollWindowMax before an adaptive reader polls: one short gap in sparse
// traffic (a Poisson stream of 200 records/s has one in 25) is no reason
// to poll, while a request/response loop passes this at once.
const pollStartAfter = 3

// A polling reader one of whose attempts took longer than pollContended
// (a read and a yield to the process's other goroutines normally take a
// microsecond or two) was preempted by the operating system, or its process
// has other work to run: the cores are oversubscribed, and spinning there
// only keeps the peer, or that work, waiting. It stops polling for
// pollBackoff.
const pollBackoff = 20 * time.Millisecond

// pollContended is 50 µs in nanoseconds; tests change it.
var pollContended atomic.Int64

func init() { pollContended.Store(int64(50 * time.Microsecond)) }

// BusyPollOff, as Config.BusyPoll, turns busy polling off: every reader
// with nothing to read sleeps in the runtime's poller at once.
const BusyPollOff time.Duration = -1

// poller is a kernel's busy-polling policy, shared by its connections'
// readers: the mode, the cap on readers polling at once, and the counters.
type poller struct {
	fixed  time.Duration // > 0: fixed window; 0: adaptive; < 0: off
	max    int32         // readers allowed to poll at once
	active atomic.Int32  // readers polling now
	st     *stats
}

func newPoller(busyPoll time.Duration, maxPollers int, st *stats) *poller {
	return &poller{fixed: busyPoll, max: int32(min(maxPollers, 1<<30)), st: st}
}

// defaultMaxPollers leaves one processor that never spins, when there is
// more than one.
func defaultMaxPollers() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// on reports whether readers poll at all.
func (p *poller) on() bool { return p != nil && p.fixed >= 0 }

// acquire takes a polling slot, or reports false when max readers are
// polling already.
func (p *poller) acquire() bool {
	for {
		n := p.active.Load()
		if n >= p.max {
			return false
		}
		if p.active.CompareAndSwap(n, n+1) {
			for peak := p.st.pollPeak.Load(); n+1 > peak && !p.st.pollPeak.CompareAndSwap(peak, n+1); peak = p.st.pollPeak.Load() {
			}
			return true
		}
	}
}

func (p *poller) release() { p.active.Add(-1) }

// nextWindow is an adaptive reader's next polling window after a read that
// found its socket dry, polled for up to w (0: did not poll), and had data
// waited after it (hit: the polling found it; otherwise the reader slept in
// the runtime's poller or was not allowed to poll).
//
//   - waited > pollWindowMax: traffic is sparse or idle; stop polling.
//   - hit well inside the window: halve it (not below pollWindowMin), so a
//     burst's last poll wastes less.
//   - hit: keep it.
//   - miss, or no polling, yet the data came within pollWindowMax: a longer
//     window would have caught it; double it (from pollWindowMin, up to
//     pollWindowMax).
func nextWindow(w, waited time.Duration, hit bool) time.Duration {
	switch {
	case waited > pollWindowMax:
		return 0
	case hit && waited < w/4:
		return max(pollWindowMin, w/2)
	case hit:
		return w
	default:
		return min(pollWindowMax, max(pollWindowMin, 2*w))
	}
}

// adaptive is a reader's adaptive polling state (Config.BusyPoll 0).
type adaptive struct {
	win   time.Duration // the window, once short reaches pollStartAfter
	short int           // dry reads in a row whose data came within pollWindowMax
}

// window is how long to poll after the next dry read; 0: do not.
func (a *adaptive) window() time.Duration {
	if a.short < pollStartAfter {
		return 0
	}
	return a.win
}

// update records a dry read whose data came after waited, found by
// polling (hit) or not.
func (a *adaptive) update(waited time.Duration, hit bool) {
	switch {
	case waited > pollWindowMax:
		a.win, a.short = 0, 0
	case a.short < pollStartAfter:
		a.short++
		a.win = pollWindowMin
	default:
		a.win = nextWindow(a.win, waited, hit)
	}
}

// stop ends polling until the traffic warrants it again.
func (a *adaptive) stop() { a.win, a.short = 0, 0 }
