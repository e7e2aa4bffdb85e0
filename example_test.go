package notp_test

import (
	"fmt"

	"github.com/notp-go/notp"
)

func ExampleParseNode() {
	n, err := notp.ParseNode("foo@localhost:7022")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n.ID, n.Addr())

	_, err = notp.ParseNode("foo@localhost:0")
	fmt.Println(err)
	// Output:
	// foo localhost:7022
	// notp: invalid node: node "foo" has port 0, want 1..65535
}
