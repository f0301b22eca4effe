package flagconf

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// EnvPrefix prefixes every environment override: --http-addr is
// SHELFSYNC_HTTP_ADDR.
const EnvPrefix = "SHELFSYNC_"

// EnvName returns the environment variable for a flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses args into fs, then fills every flag not given on the command
// line from the environment, then from the TOML file named by the flag
// fileFlag (if any). Unknown keys in the file are an error.
func Load(fs *flag.FlagSet, args []string, fileFlag string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("environment %s=%q: %w", EnvName(f.Name), v, err)
			}
			set[f.Name] = true
		}
	})
	if envErr != nil {
		return envErr
	}
	if fileFlag == "" {
		return nil
	}
	path := fs.Lookup(fileFlag).Value.String()
	if path == "" {
		return nil
	}
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	raw = flattenTables(raw)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := fs.Lookup(k)
		if f == nil {
			return fmt.Errorf("config file %s: unknown key %q (run `config print` to see the keys)", path, k)
		}
		if set[k] {
			continue
		}
		vals := []any{raw[k]}
		if arr, ok := raw[k].([]any); ok {
			vals = arr
		}
		for _, v := range vals {
			if err := fs.Set(k, fmt.Sprint(v)); err != nil {
				return fmt.Errorf("config file %s: key %q = %v: %w", path, k, v, err)
			}
		}
	}
	return nil
}

// flattenTables turns a TOML table into flag names: key k of table [t] is
// the flag "t-k" ('_' in k read as '-'), so `[tls] broker_cert = ...` sets
// --tls-broker-cert.
func flattenTables(raw map[string]any) map[string]any {
	out := make(map[string]any, len(raw))
	for k, v := range raw {
		t, ok := v.(map[string]any)
		if !ok {
			out[k] = v
			continue
		}
		for kk, vv := range t {
			out[k+"-"+strings.ReplaceAll(kk, "_", "-")] = vv
		}
	}
	return out
}

// Print writes the effective value of every flag as a commented TOML file.
func Print(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "# %s\n# default: %q; environment: %s\n", f.Usage, f.DefValue, EnvName(f.Name))
		fmt.Fprintf(w, "%s = %q\n\n", f.Name, f.Value.String())
	})
}
