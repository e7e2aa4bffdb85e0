//go:build !unix

package table

import (
	"fmt"
	"os"
)

// lockFile opens path; systems without flock get no cross-process lock,
// and a second Table on the same files is the caller's mistake to avoid.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("table: opening lock file: %w", err)
	}
	return f, nil
}
