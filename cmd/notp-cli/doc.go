// Command notp-cli is the operator's tool for a notp cluster: it sends
// commands to the command server of one node (package cluster serves it;
// the protocol is package command) and prints the replies as JSON or, with
// --format text, as readable tables. It is the Go counterpart of notp's ncl.
//
// Usage:
//
//	notp-cli [flags] [command [args...]]
//
// With a command, notp-cli sends it, prints only the reply on stdout and
// exits (one-shot mode). Without one it starts an interactive shell.
//
// # Flags
//
// Flags come before the command (what follows the command is its own).
// Each has a short and a long name; -x and --x are the same.
//
//	-I, --instance <id>       id of the node to talk to (default: $NOTP_INSTANCE,
//	                          else os.Hostname())
//	-H, --hostname <host>     host of that node (default: $NOTP_HOST, else
//	                          os.Hostname())
//	-p, --port <port>         port of that node, 1-65535 (default: $NOTP_PORT,
//	                          else 7022)
//	-a, --key <cookie>        the cluster cookie; empty means no cookie, for
//	                          nodes that run without one (default: see below)
//	    --key-file <file>     read the cookie from a file (at most 4 KiB; one
//	                          trailing newline is dropped)
//	    --timeout <duration>  bound of each request, connecting included
//	                          (default 5s)
//	    --format text|json    how replies are printed (default json; every
//	                          command also takes --format after its name,
//	                          which wins)
//	    --tls                 connect over TLS, verifying the node against
//	                          the system's roots (any --tls-* flag implies it)
//	    --tls-ca <file>       PEM CA certificates to verify the node with
//	    --tls-cert <file>     PEM client certificate, for nodes that require
//	    --tls-key <file>      one, and its key (both or neither)
//	    --tls-server-name <n> name to verify the node's certificate against
//	                          (default: the -H host)
//	    --tls-insecure-skip-verify
//	                          do not verify the node's certificate (tests)
//	-h, --help                print the usage and exit
//
// The cookie comes from -a/--key when given (even as ""), else from
// --key-file, else from the NOTP_COOKIE environment variable, else it is
// empty. Prefer the file or the variable: a -a argument shows in process
// lists. An unreadable, empty or oversized key file is a usage error, as
// is a malformed NOTP_PORT or a NOTP_INSTANCE or NOTP_HOST over 1024 bytes
// (the environment only gives defaults: flags win).
// "notp-cli keygen" prints a new cookie, 256 random bits as 64 lowercase
// hex digits, and sends nothing (also in the shell). It prints the cookie
// alone on a line unless --format json (before or after keygen), which
// prints {"ok": true, "data": {"key": "<cookie>"}}:
//
//	$ export NOTP_COOKIE=$(notp-cli keygen)
//
// notp-cli is a kernel node itself, "notp-cli-<pid>-<random>" on 127.0.0.1
// with an ephemeral port; the key authenticates it like any node, so only
// holders of the cookie can send commands. A node started with a TLS
// config (cluster.Config.TLS) accepts only TLS connections: give the CLI
// the CA to verify it with and, when the node requires client
// certificates, one of its own. Unreadable or mismatched TLS files are
// usage errors (exit 2); a failed TLS handshake is an unreachable node
// (exit 1).
//
// # Commands
//
// Arguments are validated before anything is sent: ports are decimal
// numbers in 1-65535, weights positive integers, node lists complete
// id host port triples (an incomplete trailing triple is an error, where
// notp silently dropped it). Options may appear anywhere after the command.
//
//	inspect                                  the ring of the node
//	nodes [--status <health>] [--id <re>]    the ring's nodes with their health;
//	                                         also named members
//	ownership                                each node's share of the key space
//	lookup <key> [n]                         the key's owner and preference list
//	info                                     version, uptime, ring, counters (kernel, gossip, memberlist)
//	events <since>                           the events the node logged from <since>
//	monitor [--level <level>]                stream the node's events and log lines until Ctrl-C
//	ping                                     "pong"
//	get <id>                                 a node's host and port
//	has <id>                                 whether a node is in the ring
//	weight <id>                              a node's weight (virtual nodes)
//	weights                                  every node's weight
//	join <id>                                join (create) the ring <id>
//	meet <id> <host> <port>                  meet a node (transitive join)
//	leave [-f]                               leave the ring
//	insert <id> <host> <port> [-f] [-w <n>]  insert a node
//	minsert <id> <host> <port>... [-f] [-w <n>]
//	                                         insert several nodes
//	update <id> <host> <port> [weight] [-f]  update a node (weight positional)
//	remove <id> <host> <port> [-f]           remove a node
//	mremove <id> <host> <port>... [-f]       remove several nodes
//	keys list|install|use|remove [<key>]     the cluster's cookies, on every node not dead or left
//	raft peers [--group <name>]              a conflux group's servers and this node's Raft state
//	raft transfer [<id>] [--group <name>]    hand the group's leadership over (send to the leader)
//	raft remove-peer <id> [--group <name>]   remove a server from the group (send to the leader)
//	raft snapshot [--group <name>]           take a snapshot on this node now
//
// -f/--force: "Execute this command before any existing message streams on
// this node's gossip processor. Defaults to false." -w/--weight <n>: the
// number of virtual nodes; without it the node uses its ring's rfactor.
// --status alive|suspect|dead|left|unknown keeps the nodes of that health;
// --id <regexp> those whose id matches (RE2 syntax, which matches in
// linear time, at most 256 bytes; unanchored). lookup's key is at most
// 1024 bytes and n is 1-64 (default: the ring's pfactor+1); the node
// answers from its own ring. info reports the notp version and Go
// toolchain of the node's binary, its uptime, ring id, node and token
// counts, its nodes by health, and the kernel's, gossip's and memberlist
// transport's counters (packets, streams and their bytes in and out,
// streams refused at their limits; the node's own, summed over every
// time its ring was joined).
// monitor polls the node's event log (events) every 500ms, each poll
// bounded by --timeout, and prints the events at --level or above
// (default info) as they come: one JSON object per line in one-shot mode
// (text lines with --format text), text lines in the shell. It says how
// many events it missed when the node's log (its latest 1024) moved past
// it. One-shot monitor runs until a signal (exit 0) or a failed poll (the
// reply, exit 1); in the shell it runs until Enter. It shows the ring and
// health events gossip publishes and the node's log lines at info and
// above (kind "log", level info, warn or error; --level error keeps only
// errors), control characters in them printed as spaces.
// keys acts on every node the target lists as neither dead nor left
// (alive, suspect or unknown: a suspect node may still be running, and
// one that missed a use or remove would be cut off), one after another,
// and exits 0 only when each acknowledged (as serf's keys does); a node
// it could not reach or that refused fails it (exit 1), named with why.
// The reply counts, per key fingerprint, the nodes that hold it and those
// that prove with it, lists each node's answer and names the dead and left
// nodes it skipped, which do not fail it. install seals the new cookie under the cookie notp-cli
// connects with (the kernel authenticates but does not encrypt); use and
// remove take a cookie or its fingerprint and send the fingerprint. A
// rotation: keys install $NEW, keys use $NEW, keys remove $OLD, each
// finished everywhere before the next.
// raft acts on a conflux group the node runs (the command exists only on
// nodes that run one; elsewhere it fails with UNKNOWN_COMMAND). --group
// names the group and may be left out when the node runs only one. peers
// lists each server of the group's configuration (id, address, voter or
// nonvoter, whether it leads, the applied index its store reports, absent
// when it did not answer within 500ms) under this node's state, term,
// last log, commit and applied indices; --format text prints them as a
// table. transfer hands leadership to <id> or to the most up-to-date
// voter; remove-peer removes a server (a dead one still in the ring), never
// the last voter; both must be sent to the leader and fail elsewhere with
// NOT_LEADER, whose message names the leader. snapshot takes a snapshot on
// the target now (it fails when nothing was applied since the last one).
// A raft request, like any, ends after --timeout; the node bounds its
// work by its command timeout.
// "notp-cli help [command]" prints the usage of all or one command;
// "notp-cli keygen" prints a new cookie.
//
// # Output and exit codes
//
// One-shot mode prints the reply as 2-space-indented JSON, and nothing
// else, on stdout: {"ok": true, "data": ...} or {"ok": false, "error":
// {"message": ..., "code": ...}}. The data is the server's JSON with its
// key order kept. With --format text it prints the data for people: a
// list of objects as a table with a header row, an object as "key  value"
// lines (nested objects and lists indented under their key), a string as
// is, ownership as the bar chart, and an error as "error: <message>
// (<code>)" with one line per field. When no reply arrives notp-cli prints an ok:false reply
// of its own with one of these codes:
//
//	TIMEOUT           no connection or no reply within --timeout
//	UNREACHABLE       the TCP connection to the node failed (reported at once)
//	HANDSHAKE_FAILED  the node refused the connection: wrong --key, a key
//	                  for a node without one (or the reverse), or a wrong
//	                  --instance id (reported at once)
//	DISCONNECTED      the connection dropped before the reply arrived
//	INVALID_REPLY     the reply was not a well-formed command reply
//	UNKNOWN_NAME      the node runs no command server
//	CANCELED          interrupted by a signal
//
// The exit code is 0 for an ok:true reply, 1 for an ok:false reply or any
// of the failures above, and 2 for a usage error (bad flags, unknown
// command, bad arguments), reported on stderr with nothing sent.
//
// # Interactive shell
//
// The shell prints "Connecting to <id> at <host>:<port>", pings the node's
// command server and prints "Connected to <id>" (or the error on stderr,
// exiting 1). At the prompt "> " it takes the commands above plus
// "keygen", "help [command]" and "exit" (Ctrl-D ends it too). When stdin is a
// terminal, lines are edited with golang.org/x/term (history with the
// arrow keys, TAB completes command names and raft's operations); otherwise lines are read
// plainly, so the shell can be scripted through a pipe. Replies are
// printed as JSON (or as text with --format text, global or per command),
// except that ownership is drawn as a bar chart, one line
// per node: id, a bar of █ (the largest share fills the terminal width,
// or 40 columns) and the percentage. When the connection drops the shell
// prints "Disconnected from <id>" once, requests fail after at most
// --timeout (at once if reconnecting fails), and "Connected to <id>" is
// printed when the link is back.
//
// # Examples
//
//	$ export NOTP_COOKIE=$(notp-cli keygen)   # once; share it with the nodes
//	$ notp-cli -I node1 -H 10.0.0.1 -p 7022 nodes
//	$ notp-cli -I node1 -H 10.0.0.1 insert node4 10.0.0.4 7022 -w 3
//	$ notp-cli -I node1 -H 10.0.0.1 --key-file /etc/notp/cookie minsert n5 10.0.0.5 7022 n6 10.0.0.6 7022 --force
//	$ notp-cli -I node1 -H 10.0.0.1 weights | jq '.data'
//	$ export NOTP_INSTANCE=node1 NOTP_HOST=10.0.0.1
//	$ notp-cli --format text members --status suspect --id '^web-'
//	$ notp-cli lookup user:42 3
//	$ notp-cli --format text monitor --level warn
//	$ notp-cli --format text raft peers
//	$ notp-cli -I node2 -H 10.0.0.2 raft transfer node3 --group ledger
//	$ notp-cli -I node1 -H 10.0.0.1
//	Connecting to node1 at 10.0.0.1:7022
//	Connected to node1
//	> ownership
//	node1  ████████████████████████████████████████   50.0%
//	node2  ████████████████████████████████████████   50.0%
//	> exit
package main
