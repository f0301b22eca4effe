//go:build !linux

package pty

import (
	"errors"
	"os"
)

// makeRaw is only implemented on Linux, where shelfsync's simulators run.
func makeRaw(*os.File) error { return errors.New("raw mode not implemented on this OS") }

// pollable returns f unchanged off Linux.
func pollable(f *os.File) (*os.File, error) { return f, nil }
