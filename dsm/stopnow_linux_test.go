package dsm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/notp-go/notp/clustertest"
)

// StopNow drops only the cancellation it causes: when the disk under the
// table's log fails, the table's close error comes back from StopNow,
// still matching its cause with errors.Is.
func TestStopNowReturnsTheTableCloseError(t *testing.T) {
	c, _ := form(t, clustertest.Config{Nodes: 1}, Config{}, true)
	ctx := clustertest.Context(t, 20*time.Second)
	dir := t.TempDir()
	s, err := New(c.Node(0), Config{Name: "failing", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, "before", 1); err != nil {
		t.Fatal(err)
	}
	breakLog(t, filepath.Join(dir, "failing_LATEST.LOG"))
	if err := s.Create(ctx, "lost", 1); !isCode(err, CodeStorage) {
		t.Fatalf("Create on a failed disk: %v, want %s", err, CodeStorage)
	}
	err = s.StopNow()
	if !errors.Is(err, syscall.EBADF) {
		t.Fatalf("StopNow = %v, want the table's write error (EBADF)", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Fatalf("StopNow kept the cancellation: %v", err)
	}
	if err := s.StopNow(); err != nil {
		t.Fatalf("second StopNow: %v", err)
	}
	if err := s.Create(ctx, "after", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("after StopNow: %v", err)
	}
}

// breakLog makes the process's one open descriptor of the file at path
// refuse writes (EBADF), as a disk that fails under an open file: it
// replaces the descriptor, in one dup3, with a read-only one of the same
// file.
func breakLog(t *testing.T, path string) {
	t.Helper()
	want, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	fd := -1
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || target != want {
			continue
		}
		if fd >= 0 {
			t.Fatalf("%s is open more than once", path)
		}
		if fd, err = strconv.Atoi(e.Name()); err != nil {
			t.Fatal(err)
		}
	}
	if fd < 0 {
		t.Fatalf("%s is not open", path)
	}
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := syscall.Dup3(int(ro.Fd()), fd, syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
}
