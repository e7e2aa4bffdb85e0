package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/gossip"
	"github.com/notp-go/notp/kernel"
)

// metric is one series read from a stats snapshot of type S: its
// descriptor, its type, the values of the descriptor's variable labels
// (after "actor" for actors) and how to read it.
type metric[S any] struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	labels []string
	val    func(*S) float64
}

// allDescs lists each descriptor once, for Describe.
var allDescs []*prometheus.Desc

// newDesc makes a descriptor and records it in allDescs.
func newDesc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, labels, nil)
	allDescs = append(allDescs, d)
	return d
}

func counter[S any](d *prometheus.Desc, val func(*S) uint64, labels ...string) metric[S] {
	return metric[S]{desc: d, typ: prometheus.CounterValue, labels: labels, val: func(s *S) float64 { return float64(val(s)) }}
}

func gauge[S any](d *prometheus.Desc, val func(*S) float64, labels ...string) metric[S] {
	return metric[S]{desc: d, typ: prometheus.GaugeValue, labels: labels, val: val}
}

// kcounter is a kernel counter without labels, its descriptor made here.
func kcounter(name, help string, val func(*kernel.Stats) uint64) metric[kernel.Stats] {
	return counter(newDesc("notp_kernel_"+name, help), val)
}

var (
	kernelRejected = newDesc("notp_kernel_rejected_total",
		"Connections, records or frames the kernel refused, by reason.", "reason")
	kernelCallsFailed = newDesc("notp_kernel_calls_failed_total",
		"Calls, pings and call streams that failed fast, by reason.", "reason")
)

var (
	kernelHandled = newDesc("notp_kernel_handled_total",
		"Calls and casts delivered to this node's handlers, by kind.", "kind")
	// kernelCallDuration is the kernel's call-latency histogram
	// (kernel.Stats.CallLatency), in seconds.
	kernelCallDuration = newDesc("notp_kernel_call_duration_seconds",
		"Time each call made by this node took to return, successful or not.")
)

var kernelMetrics = []metric[kernel.Stats]{
	kcounter("calls_total", "Calls this node made (to peers and to itself).",
		func(s *kernel.Stats) uint64 { return s.Calls }),
	kcounter("casts_total", "Casts this node sent (to peers and to itself).",
		func(s *kernel.Stats) uint64 { return s.Casts }),
	counter(kernelHandled, func(s *kernel.Stats) uint64 { return s.CallsHandled }, "call"),
	counter(kernelHandled, func(s *kernel.Stats) uint64 { return s.CastsHandled }, "cast"),
	kcounter("messages_received_total", "Envelopes (calls, casts, replies, stream frames) received from peers.",
		func(s *kernel.Stats) uint64 { return s.FramesIn }),
	kcounter("messages_sent_total", "Envelopes (calls, casts, replies, stream frames) sent to peers.",
		func(s *kernel.Stats) uint64 { return s.FramesOut }),
	kcounter("received_bytes_total", "Record bytes received from peers.",
		func(s *kernel.Stats) uint64 { return s.BytesIn }),
	kcounter("sent_bytes_total", "Record bytes written to peers.",
		func(s *kernel.Stats) uint64 { return s.BytesOut }),
	kcounter("records_sent_total", "Write batches (records) written to peers.",
		func(s *kernel.Stats) uint64 { return s.RecordsOut }),

	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedBadMAC }, "bad_mac"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedBadFrame }, "bad_frame"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedTooLarge }, "too_large"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedHandshake }, "handshake"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedUnknownProto }, "unknown_protocol"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedPending }, "pending_limit"),
	counter(kernelRejected, func(s *kernel.Stats) uint64 { return s.RejectedPerIP }, "per_ip_limit"),

	counter(kernelCallsFailed, func(s *kernel.Stats) uint64 { return s.CallsLost }, "connection_lost"),
	counter(kernelCallsFailed, func(s *kernel.Stats) uint64 { return s.CallsNodeDown }, "node_down"),
	counter(kernelCallsFailed, func(s *kernel.Stats) uint64 { return s.CallsQueueFull }, "queue_full"),

	kcounter("casts_unknown_name_total", "Casts to names nobody registered on this node.",
		func(s *kernel.Stats) uint64 { return s.CastsUnknownName }),
	kcounter("late_replies_total", "Replies for calls no longer waited for.",
		func(s *kernel.Stats) uint64 { return s.LateReplies }),
	kcounter("dropped_replies_total", "Replies dropped because the caller's connection was gone.",
		func(s *kernel.Stats) uint64 { return s.DroppedReplies }),
	kcounter("queue_drops_total", "Oldest messages dropped from a full reconnect queue.",
		func(s *kernel.Stats) uint64 { return s.QueueDrops }),
	kcounter("reconnects_total", "Successful link reconnections after the first connection.",
		func(s *kernel.Stats) uint64 { return s.Reconnects }),
	kcounter("streams_aborted_total", "Incoming streams ended by their size limit or timeout.",
		func(s *kernel.Stats) uint64 { return s.StreamsAborted }),
	kcounter("credit_waits_total", "Times a reply stream waited for its caller to grant credit.",
		func(s *kernel.Stats) uint64 { return s.CreditWaits }),
	kcounter("poll_hits_total", "Reads that busy polling found data for.",
		func(s *kernel.Stats) uint64 { return s.PollHits }),
	kcounter("poll_misses_total", "Busy polls that gave up and slept in the poller.",
		func(s *kernel.Stats) uint64 { return s.PollMisses }),
	// PollNanos as seconds, the Prometheus base unit, in a counter: its
	// rate is the share of a core spent polling.
	metric[kernel.Stats]{desc: newDesc("notp_kernel_poll_seconds_total",
		"Time readers spent busy polling (polls that found data and polls that gave up), in seconds."),
		typ: prometheus.CounterValue, val: func(s *kernel.Stats) float64 { return float64(s.PollNanos) / 1e9 }},
	kcounter("poll_capped_total", "Busy polls not made because MaxPollers readers were polling already.",
		func(s *kernel.Stats) uint64 { return s.PollCapped }),
	kcounter("poll_contended_total",
		"Busy polls stopped because the cores were oversubscribed (an attempt took over 50µs); the reader then pauses polling for 20ms.",
		func(s *kernel.Stats) uint64 { return s.PollContended }),
	kcounter("handler_panics_total", "Message handler panics recovered.",
		func(s *kernel.Stats) uint64 { return s.HandlerPanics }),
	kcounter("budget_pauses_total", "Times a connection's reader stopped reading a peer over its byte budget.",
		func(s *kernel.Stats) uint64 { return s.BudgetPauses }),
	kcounter("budget_closes_total", "Connections closed while their reader waited for the byte budget.",
		func(s *kernel.Stats) uint64 { return s.BudgetCloses }),
	kcounter("budget_stream_aborts_total", "Incoming streams aborted because the peer's byte budget was full.",
		func(s *kernel.Stats) uint64 { return s.BudgetStreamAborts }),

	gauge(newDesc("notp_kernel_connections_active", "Authenticated connections open now (inbound and outbound)."),
		func(s *kernel.Stats) float64 { return float64(s.ActiveConnections) }),
	gauge(newDesc("notp_kernel_connections_pending", "Accepted connections not yet through the hello."),
		func(s *kernel.Stats) float64 { return float64(s.PendingConnections) }),
	gauge(newDesc("notp_kernel_held_bytes", "Bytes of peers' messages that handlers hold now."),
		func(s *kernel.Stats) float64 { return float64(s.HeldBytes) }),
}

// gcounter is a gossip counter, its descriptor made here.
func gcounter(name, help string, val func(*gossip.Stats) uint64) metric[gossip.Stats] {
	return counter(newDesc("notp_gossip_"+name, help), val)
}

var membersDesc = newDesc("notp_gossip_members", "Ring members by their health as the failure detector sees it (this node is alive).", "health")

// Convergence of the ring: members whose gossip converged report the same
// ring_info checksum, node count and token count.
var (
	ringNodesDesc  = newDesc("notp_gossip_ring_nodes", "Nodes in this node's hash ring.")
	ringTokensDesc = newDesc("notp_gossip_ring_tokens", "Tokens in this node's hash ring (its nodes' weights summed).")
	ringInfoDesc   = newDesc("notp_gossip_ring_info",
		"Always 1: this node's ring id and the checksum of its ring state (hex) that anti-entropy compares; equal on every member once gossip converged.",
		"ring_id", "checksum")
)

var gossipMetrics = []metric[gossip.Stats]{
	gcounter("messages_sent_total", "Ring messages cast or called.", func(s *gossip.Stats) uint64 { return s.MessagesSent }),
	gcounter("send_errors_total", "Ring sends the kernel refused.", func(s *gossip.Stats) uint64 { return s.SendErrors }),
	gcounter("messages_received_total", "Ring messages handed to the ring.", func(s *gossip.Stats) uint64 { return s.MessagesReceived }),
	gcounter("messages_rejected_total", "Undecodable or invalid ring messages, or messages of another ring.",
		func(s *gossip.Stats) uint64 { return s.MessagesRejected }),
	gcounter("inbox_drops_total", "Ring messages dropped because the ring was busy.", func(s *gossip.Stats) uint64 { return s.InboxDrops }),
	gcounter("ring_changes_total", "Received ring states that changed this node's ring.", func(s *gossip.Stats) uint64 { return s.Merges }),
	gcounter("conflicts_total", "Received ring states concurrent with this node's.", func(s *gossip.Stats) uint64 { return s.Conflicts }),
	gcounter("push_pulls_total", "Memberlist state exchanges merged.", func(s *gossip.Stats) uint64 { return s.PushPulls }),
	gcounter("events_dropped_total", "Ring events dropped on full subscriber channels.", func(s *gossip.Stats) uint64 { return s.EventsDropped }),
	gcounter("flushes_total", "Ring state files written.", func(s *gossip.Stats) uint64 { return s.Flushes }),
	gcounter("flush_errors_total", "Failed ring state file writes.", func(s *gossip.Stats) uint64 { return s.FlushErrors }),
	gcounter("tombstones_collected_total", "Removal tombstones collected after their TTL.", func(s *gossip.Stats) uint64 { return s.TombstonesGCed }),
	gcounter("tombstones_evicted_total", "Tombstones dropped early to make room under the node limit.",
		func(s *gossip.Stats) uint64 { return s.TombstonesEvicted }),
	gcounter("auto_removed_total", "Nodes removed after being dead for AutoRemoveDeadAfter.", func(s *gossip.Stats) uint64 { return s.AutoRemoved }),
	gcounter("entries_refused_total", "Live ring entries refused because the ring was full.", func(s *gossip.Stats) uint64 { return s.EntriesRefused }),
	gcounter("links_deferred_total", "Ring members not connected ahead of need because of the link limit.",
		func(s *gossip.Stats) uint64 { return s.LinksDeferred }),
	gcounter("panics_total", "Panics recovered in the ring's loop and merges (should stay 0).", func(s *gossip.Stats) uint64 { return s.Panics }),
	gcounter("ring_repairs_total", "Hash rings rebuilt because they were out of step (should stay 0).",
		func(s *gossip.Stats) uint64 { return s.RingRepairs }),
	gcounter("reconnect_attempts_total", "Failure-detector joins made through members reported dead or unknown.",
		func(s *gossip.Stats) uint64 { return s.ReconnectAttempts }),
	gcounter("reconnects_total", "Reconnect joins that reached their member.", func(s *gossip.Stats) uint64 { return s.Reconnects }),
}

// mlcounter is a memberlist transport counter, its descriptor made here.
func mlcounter(name, help string, val func(*gossip.TransportStats) uint64) metric[gossip.TransportStats] {
	return counter(newDesc("notp_memberlist_"+name, help+" Counted by this node's failure-detector transport."), val)
}

var memberlistMetrics = []metric[gossip.TransportStats]{
	mlcounter("packets_received_total", "UDP datagrams handed to memberlist.", func(s *gossip.TransportStats) uint64 { return s.PacketsIn }),
	mlcounter("packets_sent_total", "UDP datagrams written.", func(s *gossip.TransportStats) uint64 { return s.PacketsOut }),
	mlcounter("packet_received_bytes_total", "Bytes of the datagrams handed to memberlist.", func(s *gossip.TransportStats) uint64 { return s.PacketBytesIn }),
	mlcounter("packet_sent_bytes_total", "Bytes of the datagrams written.", func(s *gossip.TransportStats) uint64 { return s.PacketBytesOut }),
	mlcounter("streams_accepted_total", "Stream connections accepted and handed to memberlist.", func(s *gossip.TransportStats) uint64 { return s.StreamsIn }),
	mlcounter("streams_dialed_total", "Stream connections dialed.", func(s *gossip.TransportStats) uint64 { return s.StreamsOut }),
	mlcounter("stream_received_bytes_total", "Bytes memberlist read from stream connections.", func(s *gossip.TransportStats) uint64 { return s.StreamBytesIn }),
	mlcounter("stream_sent_bytes_total", "Bytes memberlist wrote to stream connections.", func(s *gossip.TransportStats) uint64 { return s.StreamBytesOut }),
	mlcounter("streams_rejected_total", "Inbound streams closed on arrival at the stream limit.", func(s *gossip.TransportStats) uint64 { return s.RejectedStreams }),
	mlcounter("streams_too_large_total", "Streams whose reads hit the byte limit.", func(s *gossip.TransportStats) uint64 { return s.StreamsTooLarge }),
	mlcounter("stream_timeouts_total", "Streams whose reads hit a deadline.", func(s *gossip.TransportStats) uint64 { return s.StreamTimeouts }),
}

var serverRejected = newDesc("notp_genserver_rejected_total",
	"Messages an actor did not pass to a handler, by reason.", "actor", "reason")

// scounter is an actor counter labelled by actor only.
func scounter(name, help string, val func(*genserver.Stats) uint64) metric[genserver.Stats] {
	return counter(newDesc("notp_genserver_"+name, help, "actor"), val)
}

var serverMetrics = []metric[genserver.Stats]{
	scounter("received_total", "Messages delivered to the actor by the kernel, whatever became of them.",
		func(s *genserver.Stats) uint64 { return s.Received }),
	scounter("handled_total", "Messages passed to one of the actor's handlers.", func(s *genserver.Stats) uint64 { return s.Handled }),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.Overloaded }, "overloaded"),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.Malformed }, "malformed"),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.BadRequests }, "bad_request"),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.UnknownEvents }, "unknown_event"),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.Paused }, "paused"),
	counter(serverRejected, func(s *genserver.Stats) uint64 { return s.Stopped }, "stopped"),
	scounter("panics_total", "Handler or decoder panics recovered.", func(s *genserver.Stats) uint64 { return s.Panics }),
	scounter("events_dropped_total", "Lifecycle events lost on full subscriber channels.", func(s *genserver.Stats) uint64 { return s.EventsDropped }),
	gauge(newDesc("notp_genserver_mailbox_messages", "Messages waiting in the actor's mailbox now.", "actor"),
		func(s *genserver.Stats) float64 { return float64(s.Queued) }),
}
