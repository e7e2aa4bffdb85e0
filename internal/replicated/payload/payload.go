// Package payload holds the budgeted msgpack helpers of the replicated
// services' wire codecs (dlm/internal/wire, dsm/internal/wire): a payload
// is a msgpack map of a bounded size, decoded through msgpackcheck, and
// every ID or holder name in it is bounded, valid UTF-8 without NUL.
//
// It imports nothing of the node (no kernel, cluster or gossip), so the
// codecs built on it and their fuzz targets stay small.
package payload

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/vmihailenco/msgpack/v5"
)

// Bounds of what a payload carries.
const (
	// MaxNameLen bounds IDs and holder names in bytes.
	MaxNameLen = 256
	// MaxTTL is the longest TTL a replica accepts for a lock or a
	// semaphore's holder.
	MaxTTL = 24 * time.Hour
)

// ValidName checks an ID or holder name (what names it in the error):
// not empty, at most MaxNameLen bytes, valid UTF-8 without NUL (so no
// name collides with keys that start with NUL).
func ValidName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is empty", what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%s is %d bytes, over %d", what, len(s), MaxNameLen)
	case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("%s is not valid UTF-8 without NUL", what)
	}
	return nil
}

// ValidArgs checks a request's ID and holder name with ValidName,
// wrapping invalid (the service's ErrInvalidArgument) around the first
// that fails.
func ValidArgs(invalid error, id, holder string) error {
	err := ValidName("id", id)
	if err == nil {
		err = ValidName("holder", holder)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", invalid, err)
	}
	return nil
}

// ValidTimeout checks a TTL sent in milliseconds: in [1, MaxTTL].
func ValidTimeout(ms int64) error {
	if ms <= 0 || ms > MaxTTL.Milliseconds() {
		return fmt.Errorf("timeout %d ms not in [1, %d]", ms, MaxTTL.Milliseconds())
	}
	return nil
}

// IsMap reports whether b starts with a msgpack map header (fixmap, map16
// or map32). Payloads must be maps: msgpack also fills a struct from an
// array, field by position.
func IsMap(b []byte) bool {
	return len(b) > 0 && (b[0]&0xf0 == 0x80 || b[0] == 0xde || b[0] == 0xdf)
}

// Decode decodes the payload b into v after checking that it is at most
// max bytes and a map; what names the payload in the errors.
func Decode(what string, b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("%s of %d bytes, over %d", what, len(b), max)
	}
	if !IsMap(b) {
		return fmt.Errorf("%s is not a map", what)
	}
	if err := msgpackcheck.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Encode encodes v, a payload struct; prefix names the package in the
// panic an unencodable v (a programmer's error) raises.
func Encode(prefix string, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("%s: encode %T: %v", prefix, v, err)) // plain structs always encode
	}
	return b
}
