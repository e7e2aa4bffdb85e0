package table

import (
	"errors"
	"fmt"

	"github.com/notp-go/notp"
)

// Errors of package table. Callers test for them with errors.Is.
var (
	// ErrClosed: the table was closed and takes no new work.
	ErrClosed = fmt.Errorf("table: %w", notp.ErrClosed)
	// ErrNotFound: Get or HGet found no such key or field.
	ErrNotFound = errors.New("table: not found")
	// ErrWrongType: an operation of one kind (scalar, set, hash) was used
	// on a key holding another. The table is left unchanged.
	ErrWrongType = errors.New("table: wrong type")
	// ErrTooLarge: a key, member, field or value exceeds the Config's
	// limits. The table is left unchanged.
	ErrTooLarge = errors.New("table: too large")
	// ErrInvalidConfig: Open was given a Config that Validate rejects.
	ErrInvalidConfig = errors.New("table: invalid config")
	// ErrCorrupt: a snapshot file failed its checks, so the state it held
	// cannot be recovered. (A damaged log tail is not an error: Open
	// truncates it.)
	ErrCorrupt = errors.New("table: corrupt")
	// ErrLocked: another open Table (in this or another process) holds
	// the table's files.
	ErrLocked = errors.New("table: locked by another user")
)

// CodeInvalidType is the code of a TypeError, as notp's tables tag their
// type errors, for programs that report or forward errors by code: a
// handler that answers a call with a TypeError (kernel.ReplyError, or a
// genserver handler's error) sends this code, and the caller matches it
// with errors.Is(err, &kernel.RemoteError{Code: table.CodeInvalidType}).
const CodeInvalidType = "INVALID_TYPE"

// TypeError is the error of an operation of one kind used against a key
// holding another: Op (the operation, as "sset" or "hget"), Key and the
// Kind the key holds. It matches ErrWrongType with errors.Is, and its
// text keeps notp's wording so operators recognise it:
//
//	table: Invalid command 'sset' against key 'job:42' of type 'hash'
type TypeError struct {
	Op   string
	Key  string
	Kind Kind
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("table: Invalid command '%s' against key '%s' of type '%s'", e.Op, e.Key, e.Kind)
}

// Is reports whether target is ErrWrongType.
func (e *TypeError) Is(target error) bool { return target == ErrWrongType }

// Code returns CodeInvalidType.
func (e *TypeError) Code() string { return CodeInvalidType }

// typeError reports op used against key of another kind.
func typeError(op opcode, key string, k Kind) error {
	return &TypeError{Op: op.String(), Key: key, Kind: k}
}
