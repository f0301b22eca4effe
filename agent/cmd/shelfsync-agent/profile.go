package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

// cpuProfileUsage is the --cpuprofile flag's help text.
const cpuProfileUsage = "diagnostic: write a CPU profile of the whole run to this file (read it with go tool pprof)"

// registerCPUProfile adds --cpuprofile to fs, beside the configuration's
// flags (it is not a setting: config print leaves it out).
func registerCPUProfile(fs *flag.FlagSet, path *string) {
	fs.StringVar(path, "cpuprofile", "", cpuProfileUsage)
}

// startCPUProfile starts a CPU profile written to path ("" does nothing)
// and returns the function that stops and closes it.
func startCPUProfile(path string) (stop func(), err error) {
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
