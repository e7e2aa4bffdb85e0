// Package replicated is what the replicated services (package dlm's
// locks, package dsm's semaphores) share, so each keeps only its own
// logic:
//
//   - [Server]: one node's replica of a service, a genserver whose state
//     lives in a durable table (package table, every change fsynced before
//     it is answered), with background loops (sweepers, ring watchers)
//     that run while it is started and a metrics source registered on the
//     node for as long. Start opens the table, hands it to the service's
//     load function, starts the genserver and the loops; Stop undoes it
//     all in reverse; Close is Stop without draining the genserver's
//     queue (a Stop whose context has already ended). A Start that fails
//     closes the table again and leaves the Server new. A Server moves
//     once from new to started to stopped: a second Start returns
//     Errors.AlreadyStarted, a Start after Stop Errors.Closed, a Stop or
//     Close before Start Errors.NotStarted, and a second Stop or Close
//     nil. The sentinels are the service's own ([NewErrors] makes
//     them with its prefix, wrapping notp's), so callers match either
//     with errors.Is. [Every] makes the ticking loops (sweeps) Start
//     runs.
//   - [Fields]: the Config fields every service has (Name, Retries,
//     MinWait, MaxWait, Timeout, SweepInterval, Now, Logger), defaulted
//     and checked in one place while each package keeps its own Config
//     type; [Default] for the others.
//   - [Expiry]: when a grant persisted as its wall-clock start and TTL
//     expires, so a restarted replica keeps each grant for the time it
//     has left.
//   - [Jitter], [WithTimeout], [ExhaustedMessage]: the client's random
//     retry waits, request deadlines and retries-exhausted errors.
//   - [Emitter]: the service's metrics samples, named and labelled alike.
//
// Its subpackage payload holds the budgeted msgpack helpers of the
// services' wire codecs (dlm/internal/wire, dsm/internal/wire); it is a
// leaf, so those codecs and their fuzz targets link nothing of the node.
// Subpackage replicatedtest holds the services' shared test helpers.
//
// # Concurrency
//
// A Server's methods are safe for concurrent use; Start and Stop hold its
// lock throughout, so a Stop waits for a Start in progress. Stop cancels
// the loops' context and waits for every loop to return before it stops
// the genserver, so a loop may call and cast to it until then.
package replicated
