package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The protoactor-go side: gRPC-based remote, no authentication (protoactor
// has none). Payloads travel as google.protobuf.BytesValue, a message that is
// registered in the global protobuf registry, so no generated code is needed.
func init() {
	registry["protoactor"] = system{
		config: "protoactor remote (gRPC, no auth)",
		serve:  protoServe,
		dial:   protoDial,
	}
}

const (
	protoEcho = "echo"
	protoSink = "sink"
)

func protoSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}

// sinkActor counts BytesValue casts and answers an Empty request with
// 16 bytes: the count and its wall clock in Unix nanoseconds.
type sinkActor struct{ count int64 }

func (a *sinkActor) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *wrapperspb.BytesValue:
		a.count++
	case *emptypb.Empty:
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(a.count))
		binary.BigEndian.PutUint64(b[8:], uint64(time.Now().UnixNano()))
		c.Respond(&wrapperspb.BytesValue{Value: b[:]})
	}
}

func protoServe(_ context.Context, _ *secrets) (string, func() error, error) {
	sys := protoSystem()
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0))
	r.Start()
	echo := actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.BytesValue); ok {
			c.Respond(m)
		}
	})
	if _, err := sys.Root.SpawnNamed(echo, protoEcho); err != nil {
		r.Shutdown(false)
		return "", nil, err
	}
	if _, err := sys.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &sinkActor{} }), protoSink); err != nil {
		r.Shutdown(false)
		return "", nil, err
	}
	stop := func() error {
		r.Shutdown(false)
		sys.Shutdown()
		return nil
	}
	return sys.Address(), stop, nil
}

type protoClient struct {
	sys   *actor.ActorSystem
	r     *remote.Remote
	echo  *actor.PID
	sink  *actor.PID
	empty *emptypb.Empty
}

func protoDial(ctx context.Context, addr string, _ *secrets) (client, error) {
	sys := protoSystem()
	r := remote.NewRemote(sys, remote.Configure("127.0.0.1", 0))
	r.Start()
	c := &protoClient{
		sys:   sys,
		r:     r,
		echo:  actor.NewPID(addr, protoEcho),
		sink:  actor.NewPID(addr, protoSink),
		empty: &emptypb.Empty{},
	}
	// The first request opens the gRPC streams in both directions.
	for {
		_, _, err := c.CastStats(ctx)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			c.Close()
			return nil, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return callTimeout
}

func (c *protoClient) Call(ctx context.Context, payload []byte) error {
	res, err := c.sys.Root.RequestFuture(c.echo, &wrapperspb.BytesValue{Value: payload}, timeoutOf(ctx)).Result()
	if err != nil {
		return err
	}
	m, ok := res.(*wrapperspb.BytesValue)
	if !ok || !bytes.Equal(m.Value, payload) {
		return fmt.Errorf("unexpected echo %T", res)
	}
	return nil
}

func (c *protoClient) Cast(payload []byte) error {
	c.sys.Root.Send(c.sink, &wrapperspb.BytesValue{Value: payload})
	return nil
}

func (c *protoClient) CastStats(ctx context.Context) (int64, int64, error) {
	res, err := c.sys.Root.RequestFuture(c.sink, c.empty, timeoutOf(ctx)).Result()
	if err != nil {
		return 0, 0, err
	}
	m, ok := res.(*wrapperspb.BytesValue)
	if !ok || len(m.Value) != 16 {
		return 0, 0, errors.New("bad stats reply")
	}
	return int64(binary.BigEndian.Uint64(m.Value[:8])), int64(binary.BigEndian.Uint64(m.Value[8:])), nil
}

func (c *protoClient) Close() error {
	c.r.Shutdown(false)
	c.sys.Shutdown()
	return nil
}
