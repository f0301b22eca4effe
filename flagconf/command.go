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

// Parse loads the configuration of `program command` from args, the
// environment and the file named by --config into the flags register adds.
// When the command should not go on it returns ok false and the exit code:
// 0 after --help, 2 after an error (printed to stderr).
func Parse(program, command string, args []string, stderr io.Writer, register func(*flag.FlagSet)) (fs *flag.FlagSet, code int, ok bool) {
	fs = NewFlagSet(program, command, stderr, register)
	if err := Load(fs, args, "config"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fs, 0, false
		}
		fmt.Fprintln(stderr, "error:", err)
		return fs, 2, false
	}
	return fs, 0, true
}

// Shared runs the commands every shelfsync daemon has, args[0] being the
// command: `config print [flags]` (the effective configuration, loaded as
// `run` would, with each default), `version`, and `help`; anything else is
// an unknown command. usage is the daemon's help text. It returns the exit
// code.
func Shared(program, version, usage string, args []string, stdout, stderr io.Writer, register func(*flag.FlagSet)) int {
	switch args[0] {
	case "config":
		if len(args) < 2 || args[1] != "print" {
			fmt.Fprintf(stderr, "usage: %s config print [flags]\n", program)
			return 2
		}
		fs, code, ok := Parse(program, "config print", args[2:], stderr, register)
		if !ok {
			return code
		}
		Print(stdout, fs)
		return 0
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
	return 2
}
