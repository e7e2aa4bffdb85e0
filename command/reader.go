package command

import "bytes"

// bytesReader gives each untrusted payload its own decoder over a plain
// reader: msgpack's pooled Unmarshal path can grow shared buffers on a
// forged length.
func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
