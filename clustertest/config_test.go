package clustertest

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // "" = valid
	}{
		{"one node", Config{Nodes: 1}, ""},
		{"max nodes", Config{Nodes: MaxNodes}, ""},
		{"no nodes", Config{}, "Nodes = 0"},
		{"too many", Config{Nodes: MaxNodes + 1}, "want 1..64"},
		{"loss without faults", Config{Nodes: 2, Loss: 0.1}, "need Faults"},
		{"loss with faults", Config{Nodes: 2, Faults: true, Loss: 0.1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
