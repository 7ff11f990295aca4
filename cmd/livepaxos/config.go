package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// envPrefix starts the environment variable of every node flag:
// LIVEPAXOS_ and the flag's name in upper case, dashes as underscores
// (--client-listen: LIVEPAXOS_CLIENT_LISTEN).
const envPrefix = "LIVEPAXOS_"

// envName is flag name's environment variable.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyNodeConfig fills the node flags the command line left unset from
// two more sources, in order: the YAML file path (when not ""), whose keys
// are flag names (id: 1, peers: "1=n1:7001,..." or a list, lease-timeout:
// 3s), then the environment (envName). The command line wins, then the
// file, then the environment. An unknown key, a key that is not a node
// flag, or a value the flag refuses is a usage error naming its source.
func applyNodeConfig(fs *pflag.FlagSet, path string, getenv func(string) string) error {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%w: --config: %v", errUsage, err)
		}
		var kv map[string]any
		if err := yaml.Unmarshal(b, &kv); err != nil {
			return fmt.Errorf("%w: --config %s: %v", errUsage, path, err)
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := fs.Lookup(k)
			if f == nil || k == "config" || k == "help" {
				return fmt.Errorf("%w: --config %s: %q is not a node flag (see livepaxos node --help)", errUsage, path, k)
			}
			if f.Changed {
				continue // the command line wins
			}
			v, err := configValue(kv[k])
			if err != nil {
				return fmt.Errorf("%w: --config %s: %s: %v", errUsage, path, k, err)
			}
			if err := fs.Set(k, v); err != nil {
				return fmt.Errorf("%w: --config %s: %s: %v", errUsage, path, k, err)
			}
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "config" || f.Name == "help" { // set by the command line or the file
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%w: %s: %v", errUsage, envName(f.Name), e)
			}
		}
	})
	return err
}

// configValue is a YAML value as a flag's text: a scalar as written, a
// list (of peers, say) joined with commas.
func configValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("no value")
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := configValue(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	case map[string]any:
		return "", fmt.Errorf("a map is no flag value")
	}
	return fmt.Sprint(v), nil
}
