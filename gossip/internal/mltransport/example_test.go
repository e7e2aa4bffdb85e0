package mltransport_test

import (
	"bytes"
	"fmt"

	"github.com/notp-go/notp"
	"github.com/notp-go/notp/gossip/internal/mltransport"
	"github.com/notp-go/notp/kernel"
)

// Every node derives the same gossip key from the cluster cookie.
func ExampleSecretKey() {
	cookie := "example cluster cookie, at least 16 bytes"
	ka, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "a", Host: "127.0.0.1"}, Cookie: cookie})
	kb, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "b", Host: "127.0.0.1"}, Cookie: cookie})
	a, b := mltransport.SecretKey(ka), mltransport.SecretKey(kb)
	fmt.Println(len(a), bytes.Equal(a, b))
	ki, _ := kernel.New(kernel.Config{Node: notp.Node{ID: "i", Host: "127.0.0.1"}, Insecure: true})
	fmt.Println(mltransport.SecretKey(ki) == nil) // insecure kernel: no encryption
	// Output:
	// 32 true
	// true
}
