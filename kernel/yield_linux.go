package kernel

import "syscall"

// osYield gives the processor to other runnable threads, of this process
// or another, for a moment (sched_yield(2), which never blocks). A polling
// reader calls it between attempts so that on a machine with more runnable
// threads than cores its spinning does not keep the peer it waits for off
// the processor.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
