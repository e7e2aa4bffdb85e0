package dlm_test

import (
	"errors"
	"testing"

	"github.com/notp-go/notp/dlm"
)

// New refuses a nil node with ErrInvalidConfig before it looks at the
// Config.
func TestNewNilNode(t *testing.T) {
	_, err := dlm.New(nil, dlm.Config{Quorum: -1})
	if !errors.Is(err, dlm.ErrInvalidConfig) || err.Error() != "dlm: invalid config: nil node" {
		t.Fatalf("New(nil) = %v, want ErrInvalidConfig: nil node", err)
	}
}
