// Package fuzz holds the fuzz targets of package command's codecs (the
// payloads a node decodes from any member, the replies a client decodes).
// They live apart from command's own tests, whose examples start a whole
// cluster node: Go's fuzz worker resets and scans the coverage counters of
// everything the test binary links on every execution, so here a target
// pays for command and its dependencies only. The package has no code of
// its own.
package fuzz
