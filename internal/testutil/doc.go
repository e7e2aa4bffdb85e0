// Package testutil holds the module's test helpers that packages below
// cluster need too: polling a condition with a deadline ([WaitFor]),
// checking for leaked goroutines ([CheckLeaks]), a logger writing to the test's
// output ([Logger]), a listener that opens no socket, for kernels run
// inside a testing/synctest bubble ([IdleListen]), and the memory
// measures of the tests that bound what hostile input can make a node
// allocate or hold ([Allocated], [AllocPerRun], [HeapPeak]), a loopback
// server that accepts and never answers ([SilentServer]) and a buffer
// safe for a writer and a reader at once ([SyncBuffer]). The memberlist
// config of the tests, with loopback timings, is package mltest's, so that
// packages whose tests run no memberlist do not link it.
//
// Each helper exists once. Package clustertest wraps them for users; the
// internal tests of kernel, genserver and gossip import this package
// directly, since clustertest imports them (through cluster) and their
// internal tests cannot import it back.
//
// The helpers only read the clock, the goroutine count and the memory
// statistics; none keeps a goroutine running after it returns, except
// HeapPeak's sampler, which runs until its stop is called.
package testutil
