package kernel

import (
	"syscall"
	"unsafe"
)

// sysWrite and sysRead are write(2) and read(2) on a non-blocking socket
// without the runtime's syscall bookkeeping: they never block (they return
// EAGAIN instead), so the scheduler need not know, and a mostly idle
// process does not wake its monitor thread for every record (measured:
// that wake-up was a sixth of a busy server's CPU time).
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}
