package dsm

import (
	"github.com/notp-go/notp/dsm/internal/wire"
	"github.com/notp-go/notp/internal/replicated/payload"
)

// The owner protocol lives in package wire (small, so its fuzz targets
// run fast); these names keep the rest of the package short.
type (
	request   = wire.Request
	reply     = wire.Reply
	handoff   = wire.HandoffMsg
	handedOff = wire.HandedOff
	handed    = wire.HandedMsg
)

const (
	evCreate    = wire.Create
	evRead      = wire.Read
	evDestroy   = wire.Destroy
	evPost      = wire.Post
	evClose     = wire.Close
	evHandoff   = wire.Handoff
	evHanded    = wire.Handed
	evSweep     = wire.Sweep
	evRebalance = wire.Rebalance
)

func encode(v any) []byte { return wire.Encode(v) }

func validName(what, s string) error { return payload.ValidName(what, s) }
