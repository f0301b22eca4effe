package flagconf

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// NewFlagSet returns the flag set of `program command`, with the flags
// register adds and a usage text that names the three sources of a value.
func NewFlagSet(program, command string, stderr io.Writer, register func(*flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet(program+" "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s [flags]\n\nFlags (environment %s<FLAG>, or keys of --config):\n", program, command, EnvPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// PrintCommand runs `program config print [flags]` (args start after
// "config"): it loads the configuration as `run` would, with the file named
// by --config, and writes every effective value with its default. It
// returns the exit code.
func PrintCommand(program string, args []string, stdout, stderr io.Writer, register func(*flag.FlagSet)) int {
	if len(args) < 1 || args[0] != "print" {
		fmt.Fprintf(stderr, "usage: %s config print [flags]\n", program)
		return 2
	}
	fs := NewFlagSet(program, "config print", stderr, register)
	if err := Load(fs, args[1:], "config"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "error:", err)
		return 2
	}
	Print(stdout, fs)
	return 0
}
