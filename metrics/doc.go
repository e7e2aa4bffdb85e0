// Package metrics exports a node's counters to Prometheus. A [Collector]
// reads, at each scrape, the counters the other packages already keep —
// [kernel.Stats], [gossip.Stats] and the ring's members, memberlist's
// transport counters, and the [genserver.Stats] of the actors it watches —
// so the core packages (kernel, genserver, gossip) stay free of the
// Prometheus client. A [Server] serves a gatherer at /metrics within fixed
// budgets. cluster.Config.MetricsAddr wires both into a node:
//
//	n, _ := cluster.New(cluster.Config{..., MetricsAddr: "127.0.0.1:9100"})
//	_ = n.Metrics().Watch(myActor) // report an actor of yours
//
// or, to serve the series yourself:
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(metrics.New(k, ring))
//
// # Series
//
// Counters end in _total, byte counts in _bytes_total; gauges are values
// now. Every series is read from a snapshot: nothing is sampled between
// scrapes and the Collector starts no goroutine.
//
//	notp_kernel_calls_total, _casts_total              calls and casts this node made
//	notp_kernel_handled_total{kind}                    call, cast: delivered to this node's handlers
//	notp_kernel_call_duration_seconds                  histogram of each call's duration, 25µs..30s
//	notp_kernel_messages_received_total, _sent_total   envelopes (calls, casts, replies, stream frames)
//	notp_kernel_received_bytes_total, _sent_bytes_total, _records_sent_total
//	notp_kernel_rejected_total{reason}                 bad_mac, bad_frame, too_large, handshake,
//	                                                   unknown_protocol, pending_limit, per_ip_limit
//	notp_kernel_calls_failed_total{reason}             connection_lost, node_down, queue_full
//	notp_kernel_queue_drops_total, _reconnects_total, _casts_unknown_name_total,
//	  _late_replies_total, _dropped_replies_total, _streams_aborted_total,
//	  _credit_waits_total, _handler_panics_total,
//	  _budget_pauses_total, _budget_closes_total, _budget_stream_aborts_total
//	notp_kernel_poll_hits_total, _poll_misses_total    busy polls that found data / gave up
//	notp_kernel_poll_seconds_total                     time spent busy polling (counter, seconds)
//	notp_kernel_poll_capped_total, _poll_contended_total   polls not made at MaxPollers /
//	                                                   stopped on oversubscribed cores
//	notp_kernel_connections_active, _connections_pending, _held_bytes   (gauges)
//	notp_gossip_members{health}                        unknown, alive, suspect, dead, left (gauge)
//	notp_gossip_ring_changes_total                     received ring states that changed this node's
//	notp_gossip_ring_nodes, _ring_tokens               size of this node's hash ring (gauges)
//	notp_gossip_ring_info{ring_id,checksum}            1; checksum (hex) of the ring state that
//	                                                   anti-entropy compares: equal on every member
//	                                                   once the ring converged; a new
//	                                                   series per ring change
//	notp_gossip_messages_sent_total, _received_total, _rejected_total, _send_errors_total,
//	  _inbox_drops_total, _conflicts_total, _push_pulls_total, _reconnect_attempts_total,
//	  _reconnects_total, _entries_refused_total, _links_deferred_total, _flushes_total,
//	  _flush_errors_total, _tombstones_collected_total, _tombstones_evicted_total,
//	  _auto_removed_total, _events_dropped_total, _panics_total, _ring_repairs_total
//	notp_memberlist_packets_received_total, _packets_sent_total, _packet_*_bytes_total,
//	  _streams_accepted_total, _streams_dialed_total, _stream_*_bytes_total,
//	  _streams_rejected_total, _streams_too_large_total, _stream_timeouts_total
//	notp_genserver_received_total{actor}, _handled_total{actor}, _panics_total{actor},
//	  _events_dropped_total{actor}
//	notp_genserver_rejected_total{actor,reason}        overloaded, malformed, bad_request,
//	                                                   unknown_event, paused, stopped
//	notp_genserver_mailbox_messages{actor}             mailbox depth now (gauge)
//
//	notp_metrics_sources                               sources registered now (gauge)
//	notp_metrics_source_panics_total, _samples_dropped_total
//
// The memberlist series are the counters of the node's failure-detector
// transport, summed over every memberlist its ring has run (each join
// starts one), so they only grow.
//
// # Sources of other packages
//
// Packages built on a node (they import cluster, which imports metrics,
// so metrics cannot read them) add their series with [Collector.Register]:
// a [Source] is a function that, at each scrape, emits [Sample]s (name,
// help, kind counter, gauge or histogram, labels, value) read from the
// package's counters. Register returns the function that removes it; a
// package registers on Start and unregisters on Stop. conflux reports
// each group (notp_conflux_*{group}: Raft state, term and indexes,
// voters, Performs by outcome and their latency, Reads by consistency,
// leader changes, snapshots), dlm its locks (notp_dlm_*{name}) and dsm
// its semaphores (notp_dsm_*{name}); their package docs list the series.
// [LatencyHistogram] is a lock-free histogram over the kernel's call
// latency buckets for such packages to fill.
//
// Each sample is checked before it reaches the scrape: its name must
// start with notp_ but not with the prefix of a series the Collector
// reports itself (notp_kernel_ and so on) and, like its label names, be [a-zA-Z_][a-zA-Z0-9_]*;
// every sample of a name must carry the same help, kind and label names;
// a series (name and label values) is sent once. A sample that breaks a
// rule is dropped and counted in notp_metrics_samples_dropped_total, and
// a Source's panic is recovered and counted in
// notp_metrics_source_panics_total, so one faulty package costs its own
// series only.
//
// # Budgets
//
// A Collector reports at most [MaxServers] actors (one series set per
// actor name); [Collector.Watch] refuses more with [ErrTooManyServers].
// It reads at most [MaxSources] sources ([ErrTooManySources] past it),
// each emitting at most [MaxSamples] samples a scrape with at most
// [MaxLabels] labels of at most [MaxLabelValueLen] bytes each.
// The [Server] answers GET [Path] only (404 elsewhere, 405 for other
// methods), reads headers for at most [ReadHeaderTimeout] and
// [MaxHeaderBytes], serves at most [MaxConns] connections and
// [MaxScrapes] scrapes at once, and bounds each scrape by
// [ScrapeTimeout]. It is unauthenticated: bind it to loopback or a
// private interface.
//
// # Concurrency
//
// Collector and Server methods are safe for concurrent use. Collect takes
// a snapshot per source; its values are consistent per source, not across
// sources. [Server.Stop] lets scrapes in flight finish until its ctx ends and
// [Server.Close] cuts them at once; both wait for the serving goroutine.
package metrics
