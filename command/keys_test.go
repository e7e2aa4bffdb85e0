package command_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/notp-go/notp/command"
)

// The keys command's fields are checked on decoding: a known operation,
// a key id of 16 hex digits, a sealed key within its bound. A refused id
// is not echoed (an operator may paste a cookie by mistake).
func TestDecodeKeysArgs(t *testing.T) {
	good := command.Args{KeyOp: command.KeyUse, KeyID: "0123456789abcdef"}
	p, err := command.EncodeArgs(good)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := command.DecodeArgs(p); err != nil || got.KeyID != good.KeyID || got.KeyOp != good.KeyOp {
		t.Fatalf("DecodeArgs = %+v, %v", got, err)
	}
	for name, a := range map[string]command.Args{
		"op":       {KeyOp: "rotate"},
		"short id": {KeyOp: command.KeyUse, KeyID: "0123"},
		"secret":   {KeyOp: command.KeyUse, KeyID: "a cookie pasted by mistake"},
		"upper id": {KeyOp: command.KeyUse, KeyID: "0123456789ABCDEF"},
		"sealed":   {KeyOp: command.KeyInstall, Sealed: bytes.Repeat([]byte{1}, command.MaxSealedLen+1)},
	} {
		p, err := command.EncodeArgs(a)
		if err != nil {
			t.Fatal(err)
		}
		_, err = command.DecodeArgs(p)
		if !errors.Is(err, command.ErrInvalidArgs) || strings.Contains(err.Error(), "mistake") {
			t.Errorf("%s: %v, want ErrInvalidArgs without the id", name, err)
		}
	}
}
