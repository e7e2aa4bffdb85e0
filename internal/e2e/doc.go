// Package e2e holds the end-to-end test of notp for Go, built only with
// the e2e build tag: it starts three examples/node processes on loopback,
// drives notp-cli's commands in one-shot mode and checks exit codes and
// JSON (the ring commands; lookup, info, events and nodes --status; a
// monitor that must print an insertion and exit 0 on SIGINT; a cookie
// rotation with keys, after which the old cookie is refused and the
// nodes still see each other alive), SIGKILLs a node, restarts it from its flush file and checks
// that all three rings agree. A second three-node test SIGKILLs a node,
// waits until the others declare it dead, restarts it with its flush file
// on a new port and checks through notp-cli nodes that the others see it
// alive at the new port within seconds.
//
// TestConfluxKillLeader runs three examples/conflux processes (a
// replicated counter on Raft, on disk), adds from every node, SIGKILLs
// the leader, restarts it from its directory and checks that every node
// ends with the same total, at least the acknowledged adds and at most the
// attempted ones. TestLocksThreeProcesses runs three examples/locks
// processes sharing a ledger, SIGKILLs the one that ran the job last and
// restarts it from its directory, and checks that no two runs overlapped,
// the ledger refused no token and the restarted node runs the job again.
//
// On Linux another test runs five node processes in network namespaces
// of their own (ip netns; veth pairs to bridges in a hub namespace, with
// addresses from 198.18.0.0/24 that exist only inside the namespaces),
// splits them 2|3 by moving two nodes' links to another bridge, inserts
// through notp-cli on both sides at once, heals, and checks that all five
// rings agree; a third splits them the same way for longer than
// memberlist's GossipToTheDeadTime (30 s) and checks that rings and health
// heal within a reconnect interval. They need root (or CAP_SYS_ADMIN and
// CAP_NET_ADMIN) and iproute2, and skip, saying why, where network
// namespaces cannot be created. Namespace names are unique per run and deleted at the end, even
// on failure.
//
// Run it with .ci/e2e, which builds the binaries and passes their paths in
// NOTP_E2E_NODE and NOTP_E2E_CLI. Without those variables the test builds
// the binaries itself with the go command:
//
//	go test -tags e2e -count=1 -v ./internal/e2e/
//
// The node processes' logs are printed when the test fails.
package e2e
