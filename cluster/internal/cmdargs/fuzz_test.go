package cmdargs

import (
	"testing"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/command"
)

// FuzzDecodeArgs: any payload for any command decodes to either a
// validated Args or a BAD_REQUEST reply with a message; nothing panics.
func FuzzDecodeArgs(f *testing.F) {
	seed := func(a command.Args) []byte {
		b, err := command.EncodeArgs(a)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	n := notp.Node{ID: "a", Host: "h", Port: 1}
	f.Add(uint8(0), []byte(nil))
	f.Add(uint8(1), seed(command.Args{ID: "x"}))
	f.Add(uint8(2), seed(command.Args{Node: &n, Weight: 3, Force: true}))
	f.Add(uint8(3), seed(command.Args{Nodes: []notp.Node{n, n}}))
	f.Add(uint8(4), []byte{0x81, 0xa4, 'n', 'o', 'd', 'e', 0xa3, 'f', 'o', 'o'})
	f.Add(uint8(5), []byte{0xc1})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		name := command.Names[int(which)%len(command.Names)]
		a, rep, ok := Decode(name, data)
		if !ok {
			if rep.OK || rep.Error == nil || rep.Error.Code != command.CodeBadRequest || rep.Error.Message == "" {
				t.Fatalf("%s: bad rejection %+v", name, rep)
			}
			return
		}
		switch name {
		case command.Join, command.Has, command.Get, command.Weight:
			if a.ID == "" {
				t.Fatalf("%s accepted without id", name)
			}
		case command.Meet, command.Insert, command.Update, command.Remove:
			if a.Node == nil || a.Node.Validate() != nil {
				t.Fatalf("%s accepted node %+v", name, a.Node)
			}
		case command.MInsert, command.MRemove:
			if len(a.Nodes) == 0 || duplicateIDs(a.Nodes) != nil {
				t.Fatalf("%s accepted nodes %+v", name, a.Nodes)
			}
			for _, n := range a.Nodes {
				if n.Validate() != nil {
					t.Fatalf("%s accepted node %+v", name, n)
				}
			}
		}
	})
}
