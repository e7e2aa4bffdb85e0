// Package e2e holds the end-to-end test of notp for Go, built only with
// the e2e build tag: it starts three examples/node processes on loopback,
// drives every notp-cli command in one-shot mode and checks exit codes
// and JSON, SIGKILLs a node, restarts it from its flush file and checks
// that all three rings agree.
//
// Run it with .ci/e2e, which builds the binaries and passes their paths in
// NOTP_E2E_NODE and NOTP_E2E_CLI. Without those variables the test builds
// the binaries itself with the go command:
//
//	go test -tags e2e -count=1 -v ./internal/e2e/
//
// The node processes' logs are printed when the test fails.
package e2e
