package gossip

import "github.com/notp-go/notp/gossip/internal/mltransport"

// MemberlistProto is the kernel protocol byte of memberlist's streams
// ([kernel.Kernel.Listen]): a connection to a node's port that starts with
// it is handed to the node's memberlist. It is append-only, like every
// protocol byte.
const MemberlistProto = mltransport.Proto

// ErrUDPBind is wrapped by Start's and Join's error when memberlist's UDP
// socket cannot be bound on the kernel's port number (typically another
// process holds that UDP port).
var ErrUDPBind = mltransport.ErrUDPBind

// TransportStats are the traffic counters of memberlist's transport over
// the kernel (packets, streams, bytes, and streams refused at their
// limits); see [Ring.TransportStats] and [TransportTotals].
type TransportStats = mltransport.Stats

// TransportStats returns the counters of this ring's memberlist transport,
// summed over every memberlist the ring has run since it was created
// (each join of a ring starts a new one), so they only grow.
func (r *Ring) TransportStats() TransportStats {
	r.trMu.Lock()
	defer r.trMu.Unlock()
	if r.tr == nil {
		return r.trDone
	}
	return r.trDone.Add(r.tr.Stats())
}

// TransportTotals returns the transport counters summed over every ring of
// the process since it started, stopped ones included, for benchmarks that
// run many nodes in one process. Take differences of two snapshots to
// measure an interval.
func TransportTotals() TransportStats { return mltransport.TotalStats() }
