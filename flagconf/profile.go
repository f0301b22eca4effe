package flagconf

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

// RegisterCPUProfile adds the diagnostic --cpuprofile flag to fs, beside a
// command's configuration flags (it is not a setting: a printed
// configuration leaves it out).
func RegisterCPUProfile(fs *flag.FlagSet, path *string) {
	fs.StringVar(path, "cpuprofile", "", "diagnostic: write a CPU profile of the whole run to this file (read it with go tool pprof)")
}

// StartCPUProfile starts a CPU profile written to path ("" does nothing)
// and returns the function that stops and closes it.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
