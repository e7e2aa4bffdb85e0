// Package faultnet is a fault-injecting network for clusters of nodes run
// in one process by tests: it partitions nodes (symmetrically, or in one
// direction only), loses, duplicates and reorders datagrams, refuses or
// blackholes new stream connections across a partition and cuts the
// existing ones.
//
// The traffic is real loopback TCP and UDP. Each node gets its own
// loopback address ([Loopback]: 127.0.0.N; Linux routes all of
// 127.0.0.0/8 to lo), so the network tells nodes apart by IP: a [Host]'s
// Listen and ListenPacket bind its address only, and its Dial binds its
// address as the source, so every connection and datagram carries both
// ends' hosts. Plug a Host into a node through the hooks that replace its
// sockets:
//
//	fn := faultnet.New(1) // seed of the loss, duplication and reorder dice
//	defer fn.Close()
//	h, _ := fn.Host(faultnet.Loopback(1))
//	n, _ := cluster.New(cluster.Config{
//		Node:   notp.Node{ID: "a", Host: h.Addr().String()},
//		Kernel: kernel.Config{Listen: h.Listen, Dial: h.Dial},
//		Gossip: gossip.Config{ListenPacket: h.ListenPacket},
//		// ...
//	})
//	fn.Partition([]netip.Addr{a, b}, []netip.Addr{c, d, e}) // 2|3
//	fn.Heal()
//
// # Faults
//
// Reachability is per direction: [Network.Block] stops what from sends
// to to, [Network.Partition] blocks both directions between groups and
// [Network.Heal] lifts every block. A datagram is dropped when its
// direction is blocked, when it is sent and again when a delayed one is
// delivered. A stream carries data both ways, and TCP needs both ways to
// deliver anything (a blocked direction also stops the acknowledgements
// of the other), so a connection between two hosts needs both directions
// open: a cut in either direction cuts it. Creating a block closes the
// connections it cuts (both ends, as a reset would); a new dial across it
// fails at once with [ErrRefused] in [Refuse] mode (a closed port) or, in
// [Blackhole] mode (lost SYNs), waits until the dial's ctx ends, the block
// heals (then it connects, as a retransmitted SYN would) or the network
// closes. An accepted connection from a host that cannot be reached is
// closed before the listener's caller sees it.
//
// [PacketFaults] adds random faults to every datagram that may pass: loss,
// duplication, and reordering (a datagram held back for a random delay so
// later ones overtake it). The dice come from the seed given to [New];
// the scheduler still orders goroutines, so runs are reproducible in
// their fault rates, not packet by packet.
//
// # Budgets
//
// At most [MaxDelayed] datagrams are held back at a time (more are sent
// at once, unreordered), each for at most [PacketFaults].ReorderDelay
// (at most one second). Hosts accept only loopback addresses, so a test
// cannot bind or spoof anything outside the machine.
//
// # Concurrency
//
// All methods are safe for concurrent use. Fault settings apply to the
// next datagram, dial or accept; a block applies at once to existing
// connections. [Network.Close] drops delayed datagrams, fails blackholed
// and later dials with [ErrClosed] and waits for the goroutines holding
// datagrams back. Connections, listeners and packet sockets are closed by
// their owners (the nodes).
package faultnet
