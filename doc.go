// Package notp is the root of notp for Go, a toolkit for building
// actor-based services that run across machines. It is a Go port of notp
// (the JavaScript library also known as clusterluck), with stronger
// guarantees: authenticated frames, context deadlines everywhere, bounded
// vector clocks and crash-safe persistence.
//
// This package holds only the vocabulary every other package shares: [Node],
// the identity and address of one cluster member, and the lifecycle
// sentinels ([ErrAlreadyStarted], [ErrNotStarted], [ErrClosed],
// [ErrNilKernel]) that the sentinels of the same names in the packages of
// the node wrap.
//
// # Map of the module
//
// Standalone building blocks:
//
//   - [github.com/notp-go/notp/chash]: a weighted consistent hash ring with
//     preference lists; usable on its own to shard keys across servers.
//   - [github.com/notp-go/notp/vclock]: vector clocks with merge, descends,
//     compare and trimming; usable on its own.
//
// The node, bottom up:
//
//   - [github.com/notp-go/notp/kernel]: a node's one port: authenticated
//     TCP links to peers, named handlers, calls, casts and streams, and a
//     mux (Listen/Dial by protocol byte) for other protocols on that port.
//   - [github.com/notp-go/notp/genserver]: actors on a kernel: a named
//     server with a bounded mailbox handled by one goroutine.
//   - [github.com/notp-go/notp/gossip]: the cluster's hash ring kept in
//     agreement by gossip, with memberlist's failure detector over the
//     kernel's port; [github.com/notp-go/notp/gossip.Ring.View] answers
//     who owns a key.
//   - [github.com/notp-go/notp/cluster]: one node: a kernel, a gossip ring
//     and the command server, started and stopped together.
//   - [github.com/notp-go/notp/command]: the command protocol and its
//     client, command.Do, which notp-cli and Go programs use to drive a
//     node.
//   - [github.com/notp-go/notp/metrics]: a Prometheus collector of the
//     other packages' counters and a bounded /metrics endpoint.
//   - [github.com/notp-go/notp/discover]: seed discovery (host:port, DNS
//     names, SRV records) with backoff, for joining a cluster.
//
// State and coordination on a node:
//
//   - [github.com/notp-go/notp/table]: notp's DTable and MTable: scalars,
//     sets and hashes in memory or in a crash-safe log plus snapshot;
//     usable on its own.
//   - [github.com/notp-go/notp/dlm]: distributed read/write locks granted
//     by a quorum of each lock's replicas, with fencing tokens.
//   - [github.com/notp-go/notp/dsm]: distributed semaphores kept by the
//     ring owner of each ID and handed over when the ring changes.
//   - [github.com/notp-go/notp/conflux]: replicated state on Raft
//     (hashicorp/raft) over the node's own port: methods and a reducer,
//     Perform from any node, linearizable reads.
//
// Testing: [github.com/notp-go/notp/clustertest] runs N cluster nodes in
// one test, with fast timings, a strong generated cookie and optionally a
// fault-injecting network; it waits for them to converge, partitions,
// heals, stops and restarts them, and checks for leaked goroutines.
//
// Programs:
//
//   - cmd/notp-cli: the operator's CLI and shell. Its
//     cmd/notp-cli/internal/cmdline parses command lines (the table of
//     commands, their options and arguments, into the payload a node
//     receives) and cmd/notp-cli/internal/textout renders a reply's JSON
//     data as text for people.
//   - examples/: actors, clocks, conflux, demo, kv, locks, node, shard and
//     tables, one program each.
//
// Internal packages:
//
//   - internal/wire: the kernel's frame codec and the one msgpack reader.
//   - internal/cookiekey: the cookie's key schedule.
//   - internal/cookiefile: reading cookie files.
//   - internal/msgpackcheck: checking msgpack within budgets before it is
//     decoded.
//   - internal/event: the event fan-out of genserver and gossip.
//   - internal/latency: the lock-free latency histogram the kernel keeps
//     of its calls and package metrics offers to others, over fixed bucket
//     bounds so that every node's histograms add up.
//   - internal/lifecycle: Close as a Stop whose context has already ended,
//     and contexts that end with a component.
//   - internal/replicated: the lifecycle, config, retry and metrics
//     plumbing dlm and dsm share. internal/replicated/payload holds their
//     wire codecs' budgeted msgpack helpers, internal/replicated/replicatedtest
//     their shared test helpers, and dlm/internal/wire and dsm/internal/wire
//     their protocols.
//   - gossip/internal/mltransport: memberlist's transport over the kernel.
//   - gossip/internal/codec: gossip's message and flush-file codecs.
//   - gossip/internal/advertise: the address memberlist advertises for a
//     node whose gossip runs over the kernel's port.
//   - cluster/internal/cmdargs: decoding and checking the arguments of the
//     commands a node serves, answering a refused payload with notp's
//     BAD_REQUEST reply and per-field messages.
//   - command/internal/fuzz: the fuzz targets of package command's codecs
//     (no code of its own).
//   - conflux/internal/logentry: the layout of a conflux log entry (the
//     action behind its request ID and proposal number).
//   - internal/faultnet: a fault-injecting network for tests.
//   - internal/testutil: the test helpers of the packages below cluster,
//     which clustertest wraps.
//   - internal/testutil/mltest: memberlist's fast test configuration, apart
//     so that tests which need no memberlist do not link it.
//   - internal/testcert: test certificates.
//   - internal/e2e: end-to-end tests of the binaries.
//
// Packages that import neither the network nor each other (chash, vclock,
// table) depend only on this package, internal/wire's msgpack reader and
// their hashing/encoding libraries, so a program that only shards keys pays
// for nothing else.
package notp
