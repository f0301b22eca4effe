// Package flagconf loads a daemon's configuration from three layers: a TOML
// file, then SHELFSYNC_* environment variables, then command-line flags
// (highest precedence). Every setting is a flag of a flag.FlagSet, so one
// definition gives `--help`, the environment name, the file key and the
// line `config print` writes with its default. shelfsync-server and
// shelfsync-agent both load their Config through it.
package flagconf
