package dsm

import "github.com/notp-go/notp/dsm/internal/wire"

// The owner protocol lives in package wire, small so that its fuzz
// targets run fast.
type (
	request   = wire.Request
	reply     = wire.Reply
	handoff   = wire.HandoffMsg
	handedOff = wire.HandedOff
	handed    = wire.HandedMsg
)

func encode(v any) []byte { return wire.Encode(v) }
