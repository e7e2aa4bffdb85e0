// Package command is the protocol of a node's command server and its
// client: the request and reply types that package cluster serves under
// the actor name [ServerName], and [Do], which notp-cli and any Go program
// use to run a command.
//
// A command is a genserver call to [ServerName] on the target node whose
// event is the command's name (one of the constants below) and whose
// payload is the msgpack encoding of [Args]. The reply payload is the
// msgpack encoding of a [Reply]. Reply.Data holds JSON, so the server
// decides the exact shape (and key order) an operator sees and the CLI
// prints it as is.
//
// The shapes follow notp's command server: {"ok": true, "data": ...} or
// {"ok": false, "error": {"message": ..., "code": ...}}. Unlike notp, an
// invalid payload or an unknown command gets an ok:false reply instead of
// silence.
//
// # Replies
//
// The data of each command's ok reply, decoded with [Reply.Decode]:
//
//   - inspect: [InspectData]
//   - nodes: []NodeHealth
//   - ownership: []Share, by id
//   - lookup: [LookupData]
//   - info: [InfoData]
//   - events: [EventsData]
//   - has: a bool; get: a notp.Node; weight: an int; weights: a map from
//     node id to weight; ping: "pong"
//   - join, leave, meet, insert, minsert, update, remove, mremove: no data
//   - raft: [RaftPeersData] for peers (check it with [DecodeRaftPeers]),
//     [RaftOpData] for transfer, remove-peer and snapshot
//
// # The raft command
//
// [Raft] is not built into the command server: package conflux
// contributes it (cluster.Node.HandleCommand) on a node while the node
// runs a conflux group. Its payload is a msgpack [RaftArgs] (send it with
// [DoRaw] and [EncodeRaftArgs]) naming the group, one of [RaftOps] and,
// for transfer and remove-peer, a server. transfer and remove-peer must
// reach the group's leader; elsewhere they fail with [CodeNotLeader].
//
// A failed command's reply carries an [Error] with one of the Code
// constants; Reply.Decode returns it as an error. Reply fields are
// append-only: a newer node may add fields, which older clients ignore.
//
// # Client
//
//	k, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "admin", Host: "127.0.0.1"}, Cookie: cookie})
//	_ = k.Start(ctx)
//	r, err := command.Do(ctx, k, node, command.Lookup, command.Args{Key: "user:42"})
//	var lk command.LookupData
//	if err == nil {
//		err = r.Decode(&lk)
//	}
//
// [Do] returns an error only when no well-formed reply arrived (the
// kernel's errors, or [ErrInvalidReply]); a refused or failed command is a
// Reply with OK false.
//
// # Security
//
// The command channel is the kernel's cookie-authenticated connection: only
// a holder of the cluster cookie can send commands. Payloads are decoded
// within budgets (see [DecodeArgs], [DecodeRaftArgs], [DecodeReply] and
// [DecodeRaftPeers]).
package command
