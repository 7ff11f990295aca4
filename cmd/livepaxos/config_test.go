package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A node flag comes from the command line, else the --config file, else
// its LIVEPAXOS_* environment variable; a list in the file is joined with
// commas; an unknown key is a usage error.
func TestNodeConfigSources(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "node.yaml")
	os.WriteFile(path, []byte(`
id: 1
peers:
  - 1=n1:7001
  - 2=n2:7001
  - 3=n3:7001
lease-timeout: 3s
log-level: info
join: false
`), 0o644)
	env := map[string]string{"LIVEPAXOS_LEASE_TIMEOUT": "5s", "LIVEPAXOS_CLIENT_LISTEN": "0.0.0.0:7101", "LIVEPAXOS_ID": "9"}
	cmd := newNodeCmd()
	if err := cmd.Flags().Parse([]string{"--id", "2", "--config", path}); err != nil {
		t.Fatal(err)
	}
	if err := applyNodeConfig(cmd.Flags(), path, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{
		"id":            "2",                             // the command line over the file and the environment
		"lease-timeout": "3s",                            // the file over the environment
		"client-listen": "0.0.0.0:7101",                  // the environment
		"peers":         "1=n1:7001,2=n2:7001,3=n3:7001", // a list, joined
		"log-level":     "info",
		"metrics":       "", // nowhere: the default
	} {
		if got := cmd.Flags().Lookup(flag).Value.String(); got != want {
			t.Errorf("--%s = %q, want %q", flag, got, want)
		}
	}
	os.WriteFile(path, []byte("peerz: 1=a:1\n"), 0o644)
	if err := applyNodeConfig(newNodeCmd().Flags(), path, os.Getenv); !errors.Is(err, errUsage) {
		t.Fatalf("an unknown key: %v, want a usage error", err)
	}
	if err := applyNodeConfig(newNodeCmd().Flags(), "", func(string) string { return "soon" }); !errors.Is(err, errUsage) {
		t.Fatalf("LIVEPAXOS_ID=soon: %v, want a usage error", err)
	}
}
