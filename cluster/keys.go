package cluster

import (
	"context"
	"errors"

	"github.com/notp-go/notp/cluster/internal/cmdargs"
	"github.com/notp-go/notp/command"
	"github.com/notp-go/notp/kernel"
)

// keys serves the keys command on this node's keyring: the kernel's, which
// memberlist's follows (gossip.Ring.SyncKeys runs before the reply, so a
// client that goes on to the next step of a rotation once every node
// answered never runs ahead of a node's memberlist). Cookies arrive sealed
// and are named by fingerprint otherwise: no key is logged or echoed.
func (c *commandServer) keys(_ context.Context, a command.Args) command.Reply {
	if c.keyring == nil {
		return command.Fail(command.CodeFailed, "this node has no keyring")
	}
	var err error
	switch a.KeyOp {
	case command.KeyList, "":
	case command.KeyInstall:
		if len(a.Sealed) == 0 {
			return cmdargs.BadRequest("keys install needs a sealed key", map[string]string{"sealed": "required"})
		}
		_, err = c.keyring.InstallSealed(a.Sealed)
	case command.KeyUse, command.KeyRemove:
		if a.KeyID == "" {
			return cmdargs.BadRequest("keys "+a.KeyOp+" needs a key id", map[string]string{"key_id": "required"})
		}
		if a.KeyOp == command.KeyUse {
			err = c.keyring.UseID(a.KeyID)
		} else {
			err = c.keyring.RemoveID(a.KeyID)
		}
	}
	if err == nil && a.KeyOp != command.KeyList && a.KeyOp != "" && c.syncKeys != nil {
		err = c.syncKeys()
	}
	if err != nil {
		return command.Fail(keyErrCode(err), err.Error())
	}
	d := command.KeysData{Node: c.self().ID}
	for _, k := range c.keyring.List() {
		d.Keys = append(d.Keys, command.KeyInfo{ID: k.ID, Primary: k.Primary})
	}
	rep, err := command.OK(d)
	if err != nil {
		return command.Fail(command.CodeFailed, err.Error())
	}
	return rep
}

// keyErrCode is the reply code of a keyring error: the request was
// wrong (a weak or unsealable key, an unknown id, the primary) or the
// node failed.
func keyErrCode(err error) string {
	for _, e := range []error{kernel.ErrSealed, kernel.ErrWeakCookie, kernel.ErrUnknownKey,
		kernel.ErrPrimaryKey, kernel.ErrKeyringFull, kernel.ErrInsecure} {
		if errors.Is(err, e) {
			return command.CodeBadRequest
		}
	}
	return command.CodeFailed
}
