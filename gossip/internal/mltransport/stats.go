package mltransport

import "sync/atomic"

// Stats are a transport's traffic counters. Byte counts are payload bytes
// as memberlist hands them over or receives them: UDP/IP headers, TLS
// records and the kernel's protocol byte on streams are not included.
type Stats struct {
	PacketsIn      uint64 // UDP datagrams handed to memberlist
	PacketsOut     uint64 // UDP datagrams written
	PacketBytesIn  uint64 // bytes of the datagrams handed to memberlist
	PacketBytesOut uint64 // bytes of the datagrams written
	StreamsIn      uint64 // stream connections accepted and handed to memberlist
	StreamsOut     uint64 // stream connections dialed
	StreamBytesIn  uint64 // bytes memberlist read from stream connections
	StreamBytesOut uint64 // bytes memberlist wrote to stream connections

	RejectedStreams uint64 // inbound streams closed on arrival: Config.MaxStreams open
	StreamsTooLarge uint64 // streams whose reads hit Config.MaxStreamBytes
	StreamTimeouts  uint64 // streams whose reads hit a deadline
}

// Add returns the field-by-field sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		PacketsIn: s.PacketsIn + o.PacketsIn, PacketsOut: s.PacketsOut + o.PacketsOut,
		PacketBytesIn: s.PacketBytesIn + o.PacketBytesIn, PacketBytesOut: s.PacketBytesOut + o.PacketBytesOut,
		StreamsIn: s.StreamsIn + o.StreamsIn, StreamsOut: s.StreamsOut + o.StreamsOut,
		StreamBytesIn: s.StreamBytesIn + o.StreamBytesIn, StreamBytesOut: s.StreamBytesOut + o.StreamBytesOut,
		RejectedStreams: s.RejectedStreams + o.RejectedStreams, StreamsTooLarge: s.StreamsTooLarge + o.StreamsTooLarge,
		StreamTimeouts: s.StreamTimeouts + o.StreamTimeouts,
	}
}

// counters are the atomic form of Stats.
type counters struct {
	packetsIn, packetsOut         atomic.Uint64
	packetBytesIn, packetBytesOut atomic.Uint64
	streamsIn, streamsOut         atomic.Uint64
	streamBytesIn, streamBytesOut atomic.Uint64
	rejectedStreams               atomic.Uint64
	streamsTooLarge               atomic.Uint64
	streamTimeouts                atomic.Uint64
}

func (c *counters) load() Stats {
	return Stats{
		PacketsIn: c.packetsIn.Load(), PacketsOut: c.packetsOut.Load(),
		PacketBytesIn: c.packetBytesIn.Load(), PacketBytesOut: c.packetBytesOut.Load(),
		StreamsIn: c.streamsIn.Load(), StreamsOut: c.streamsOut.Load(),
		StreamBytesIn: c.streamBytesIn.Load(), StreamBytesOut: c.streamBytesOut.Load(),
		RejectedStreams: c.rejectedStreams.Load(), StreamsTooLarge: c.streamsTooLarge.Load(),
		StreamTimeouts: c.streamTimeouts.Load(),
	}
}

// total sums the counters of every Transport of the process.
var total counters

// Stats returns a snapshot of this transport's counters. They keep their
// values after Shutdown.
func (t *Transport) Stats() Stats { return t.stats.load() }

// TotalStats returns the counters summed over every Transport created in
// this process since it started, shut down ones included. It exists for
// benchmarks and process-wide metrics, where the transports memberlist
// uses (created by package gossip) are out of reach; take differences of
// two snapshots to measure an interval.
func TotalStats() Stats { return total.load() }

// countPacketIn records a datagram of n bytes handed to memberlist.
func (t *Transport) countPacketIn(n int) {
	t.packetsIn.Add(1)
	for _, c := range [2]*counters{&t.stats, &total} {
		c.packetsIn.Add(1)
		c.packetBytesIn.Add(uint64(n))
	}
}

// countPacketOut records a datagram of n bytes written.
func (t *Transport) countPacketOut(n int) {
	for _, c := range [2]*counters{&t.stats, &total} {
		c.packetsOut.Add(1)
		c.packetBytesOut.Add(uint64(n))
	}
}

// countStream records a stream connection handed to memberlist (in) or
// dialed (out).
func (t *Transport) countStream(in bool) {
	if in {
		t.streamsIn.Add(1)
	}
	for _, c := range [2]*counters{&t.stats, &total} {
		if in {
			c.streamsIn.Add(1)
		} else {
			c.streamsOut.Add(1)
		}
	}
}
