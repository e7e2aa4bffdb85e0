package mltransport_test

import (
	"bytes"
	"fmt"

	"github.com/notp-go/notp/internal/mltransport"
)

// Every node derives the same gossip key from the cluster cookie.
func ExampleSecretKey() {
	a := mltransport.SecretKey("cluster cookie")
	b := mltransport.SecretKey("cluster cookie")
	fmt.Println(len(a), bytes.Equal(a, b))
	fmt.Println(mltransport.SecretKey("") == nil) // insecure kernel: no encryption
	// Output:
	// 32 true
	// true
}
