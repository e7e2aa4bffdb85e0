package genserver_test

import (
	"context"
	"errors"
	"testing"

	"github.com/notp-go/notp/genserver"
	"github.com/notp-go/notp/internal/msgpackcheck"
	"github.com/notp-go/notp/kernel"
	"github.com/vmihailenco/msgpack/v5"
)

// errUnencodable is what unencodable's EncodeMsgpack fails with.
var errUnencodable = errors.New("unencodable value")

// unencodable is a value msgpack cannot encode: its encoder fails.
type unencodable struct{}

func (unencodable) EncodeMsgpack(*msgpack.Encoder) error { return errUnencodable }

// The typed helpers' encode and decode errors wrap ErrEncode or ErrDecode
// and keep the encoder's or decoder's error in the chain, so errors.Is
// reaches both.
func TestTypedErrorsKeepTheirCause(t *testing.T) {
	k := newKernel(t)
	s := startServer(t, k, genserver.Config{Name: "typed"})
	// A reply whose array header claims two elements but holds one.
	s.Handle("truncated", func(context.Context, genserver.Request) ([]byte, error) {
		return []byte{0x92, 0x01}, nil
	})
	ctx := ctxT(t)
	target := genserver.Target{Name: "typed"}

	_, err := genserver.Call[int](ctx, k, target, "truncated", unencodable{})
	if !errors.Is(err, genserver.ErrEncode) || !errors.Is(err, errUnencodable) {
		t.Errorf("Call with an unencodable request = %v, want ErrEncode wrapping the encoder's error", err)
	}
	err = genserver.Cast(k, target, "truncated", unencodable{})
	if !errors.Is(err, genserver.ErrEncode) || !errors.Is(err, errUnencodable) {
		t.Errorf("Cast with an unencodable request = %v, want ErrEncode wrapping the encoder's error", err)
	}
	err = s.ReplyValue(kernel.From{}, unencodable{})
	if !errors.Is(err, genserver.ErrEncode) || !errors.Is(err, errUnencodable) {
		t.Errorf("ReplyValue of an unencodable value = %v, want ErrEncode wrapping the encoder's error", err)
	}
	_, err = genserver.Call[[]int](ctx, k, target, "truncated", nil)
	if !errors.Is(err, genserver.ErrDecode) || !errors.Is(err, msgpackcheck.ErrMalformed) {
		t.Errorf("Call with a truncated reply = %v, want ErrDecode wrapping msgpackcheck.ErrMalformed", err)
	}
}
