// Package cluster runs one cluster node: a kernel (the node's one port),
// the gossip ring (who is in the cluster and who owns what) and the
// command server that operators drive with notp-cli. It is notp's
// ClusterNode.
//
//	n, err := cluster.New(cluster.Config{
//		Node:   notp.Node{ID: "a", Host: "10.0.0.1", Port: 7022},
//		Cookie: secret,
//		Gossip: gossip.Config{FlushPath: "/var/lib/app/ring"},
//	})
//	if err != nil { ... }
//	if err := n.Start(ctx, "ring"); err != nil { ... }
//	defer n.Stop(context.Background())
//	srv, _ := genserver.New(n.Kernel(), genserver.Config{Name: "kv"}) // your actors
//	owner, _ := n.Ring().View().Owner([]byte("user:42"))
//
// # Start and stop order
//
// [Node.Start] first loads the flush file (Config.Gossip.FlushPath): a corrupt file
// is an error, and a loaded ring id that differs from the one Start was
// given is an error wrapping [ErrRingMismatch] with notp's text "Loaded ring
// ID '<x>' does not match '<y>'"; in both cases nothing has started. Then it
// starts the kernel (the port listens), the command server (actor
// "command") and the ring, which, with a loaded state, rejoins its peers
// through memberlist, retrying its ring's members until one answers
// (Config.Gossip.Reconnect; the ring's reconnect loop also brings back peers
// after a partition of any length, see gossip's "When nodes fail"). When
// Start returns nil the node serves.
//
// [Node.Stop] stops the metrics endpoint (when Config.MetricsAddr is
// set), the command server (queued commands finish until its
// ctx ends), the ring (which flushes its state) and the kernel, in that
// order, and waits for each. Stop does not leave the ring, unlike notp's
// stop: peers see the node dead until it restarts from its flush file and
// comes back with its ring. [Node.Close] is Stop without the drain:
// queued commands are answered as stopped and scrapes are cut.
// [Node.Leave] leaves explicitly and keeps the node running. A Node runs
// once: after Stop or Close, build a new one (on the same FlushPath to
// come back).
//
// # Commands
//
// The command server is a genserver named command.ServerName ("command").
// A command is a call whose event is the command name and whose payload is
// a msgpack command.Args; the reply is a msgpack command.Reply whose Data is
// JSON, {"ok": true, "data": ...} or {"ok": false, "error": {"message",
// "code", "fields"}}. Package command defines the protocol, the reply data
// types and its client, command.Do; the server lives in cmdserver.go:
//
//	join {id}                      join a ring; "Node already belongs to ring '<id>'" when in one
//	leave {force}                  leave the ring (the node keeps running)
//	meet {node}                    meet a node: both rings are united (transitive additions)
//	insert {node, weight, force}   weight ≤ 0: the ring's rfactor
//	minsert {nodes, weight, force} this node is filtered out; list order preserved
//	update {node, weight, force}   change a node's address or weight
//	remove {node, force}
//	mremove {nodes, force}         this node is filtered out; list order preserved
//	inspect                        {"ring", "rfactor", "pfactor", "nodes": [{id, host, port, weight}], "vclock"}
//	nodes                          [{id, host, port, health}] in ring order, health from memberlist
//	has {id}                       true or false
//	get {id}                       {id, host, port}, or "'<id>' is not defined in this ring."
//	weight {id}                    the node's weight (tokens), or the same error
//	weights                        {id: weight}
//	ping                           "pong"
//	ownership                      [{id, share}] each node's fraction of the hash space, by id
//	lookup {key, n}                {key, owner, preference: [node...]}: the key's owner and its
//	                               preference list on this node's ring; key 1..1024 bytes,
//	                               n 1..64 (0: pfactor+1)
//	info                           {node, version, go, uptime, uptime_seconds, ring, nodes, tokens,
//	                               rfactor, pfactor, health: {alive: n, ...}, kernel: {...}, gossip: {...}}
//	events {since}                 {next, missed, events: [{seq, time, level, kind, ring, nodes, more}]}:
//	                               the node's ring and health events from seq since on (0: none,
//	                               only the next cursor); at most 256 per reply, missed counts
//	                               events older than the 1024 the node keeps; levels debug (sends),
//	                               info (ring changes, alive, reconnected, left), warn (dead,
//	                               suspect, refused, this node removed); at most 16 nodes each;
//	                               the node's own log lines at info and above come as kind
//	                               "log" with their level (info, warn, error) and message
//	                               (at most 1 KiB), so notp-cli monitor streams logs too
//	keys {key_op, sealed, key_id}  {node, keys: [{id, primary}]}: this node's keyring after list,
//	                               install (a cookie sealed by the sender's kernel), use or
//	                               remove (by fingerprint); memberlist's keyring follows before
//	                               the reply. notp-cli sends it to every live node
//
// A payload is checked before it is decoded: every length it declares
// must fit in its bytes (the msgpack decoder would otherwise allocate a
// forged length) and it may nest only a few levels. An invalid payload
// gets ok:false with code BAD_REQUEST, notp's message
// ("Missing required 'id' parameter.", "Invalid node parameter types.",
// "Invalid node list format, ...") and per-field messages in fields
// ("node.port", "nodes[1].id"); a failed ring operation gets code FAILED
// with the error's text; an unknown command gets ok:false with code
// UNKNOWN_COMMAND and notp's message ("Cannot run against unknown command
// '<name>'"); notp stayed silent in all three cases. Every command's ring
// operation runs under Config.CommandTimeout (default 4 s), so one command
// cannot hold the server for longer.
//
// # Contributed commands
//
// Packages that run on the node add commands of their own with
// Node.HandleCommand (package conflux adds "raft"). A contributed command
// may not shadow a built-in one; its handler gets the payload still
// encoded and decodes it itself, runs on the command server's goroutine
// under Config.CommandTimeout, and has a panic turned into a FAILED reply.
// The security rules below hold for it unchanged; its CommandResult says
// whether the request was mutating, and a mutating one is logged like the
// built-ins (every refused request too, since its handler did not run).
//
// # Security
//
// Commands arrive only over the kernel's cookie-authenticated connections:
// a client must hold the cluster cookie (notp-cli's -a flag) and, with
// Config.TLS, pass TLS. The sender's identity is the one its connection
// authenticated, never a claim in the message; note that the cookie
// authenticates membership, not identity, so any cookie holder can claim
// any node ID. Every mutating command (join, leave, meet, insert, minsert,
// update, remove, mremove, keys) is logged at Info as "mutating command" with the
// sender's node ID, the address its connection came from, the target and
// the outcome, refused ones included. By default commands from a
// current ring member, or from this node itself, are refused with code
// NOT_ALLOWED (notp ignored them silently): the admin channel is for
// operators' clients, not for peers. Config.AllowMemberCommands lifts the
// rule. An empty cookie requires Config.Insecure and is logged as a
// warning: then anyone who reaches the port can reconfigure the ring.
//
// # Cookie rotation
//
// The kernel's keyring (kernel.Keyring) holds several cookies; gossip's
// memberlist keyring follows it. The keys command changes it on one node
// and notp-cli fans it out: install the new cookie everywhere, use it
// everywhere, remove the old one everywhere. Calls, casts and gossip go on
// throughout (TestCookieRotationUnderTraffic). Cookies travel sealed;
// replies and logs name keys by fingerprint only.
//
// # Seeds
//
// Config.Seeds (host:port, DNS names, SRV names; package discover) are met
// in the background once Start returns: each round resolves them, asks
// each address who it is with the kernel's hello (Kernel.Identify) and
// meets the first that answers, retrying with exponential backoff and
// jitter until one does or the node stops. A node whose seeds resolve only
// to itself is the first of its cluster and meets nobody. Node.MeetSeeds
// does the same on demand.
//
// # Metrics
//
// [Node.Metrics] is a Prometheus collector (package metrics) that reads the
// kernel's, the ring's and watched actors' counters at each scrape; the
// command server is watched, Watch your own actors. With
// Config.MetricsAddr ("127.0.0.1:9100"; port 0 picks one, see
// [Node.MetricsAddr]) Start serves it, with the Go runtime's and the
// process's metrics, at http://addr/metrics after the ring started, and
// fails (closing the node) when it cannot listen; Stop closes it first.
// The endpoint answers only GET /metrics, within metrics' budgets, and is
// unauthenticated: bind it to loopback or a private interface.
//
// # Fault tests
//
// Config.Kernel.Listen and Config.Kernel.Dial (TCP) and Config.Gossip.ListenPacket
// (memberlist's UDP) replace the node's sockets; the package's partition
// tests give each node its own loopback address on a fault-injecting
// network (internal/faultnet) to split, heal and churn clusters in one
// process.
//
// # Concurrency
//
// All methods of Node are safe for concurrent use. Start, Stop and Leave's
// state checks are serialised. Commands are handled one at a time on the
// command server's actor goroutine, in the order each client sent them;
// the accessors' values (Kernel, Ring) are safe for concurrent use on their
// own terms.
package cluster
