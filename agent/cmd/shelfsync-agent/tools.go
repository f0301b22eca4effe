package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/shelfsync/shelfsync/drivers/scan"
	"github.com/shelfsync/shelfsync/drivers/serialport"
)

// runDecode prints one JSON object per input: how the agent reads a label.
func runDecode(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-agent decode", flag.ContinueOnError)
	fs.SetOutput(stderr)
	epc := fs.Bool("epc", false, "inputs are RFID EPCs in hex (e.g. 3074257BF7194E4000001A85)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: shelfsync-agent decode [--epc] [INPUT ...]\n\nPrints one JSON object per input (no INPUT: one per stdin line).\nGS1 FNC1 may be given as a GS byte or as the two characters \\x1d.\nExit status 1 if any input is invalid.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	inputs := fs.Args()
	if len(inputs) == 0 {
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if line := strings.TrimRight(sc.Text(), "\r"); line != "" {
				inputs = append(inputs, line)
			}
		}
		if err := sc.Err(); err != nil {
			fmt.Fprintln(stderr, "error: read stdin:", err)
			return 2
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	status := 0
	for _, in := range inputs {
		in = strings.ReplaceAll(in, `\x1d`, "\x1d")
		out, err := scan.JSON(in, *epc)
		if err != nil {
			status = 1
		}
		_ = enc.Encode(out)
	}
	return status
}

// runScanners lists the serial ports with their USB identity.
func runScanners(stdout, stderr io.Writer) int {
	ports, err := serialport.List()
	if err != nil {
		fmt.Fprintln(stderr, "error: list serial ports:", err)
		return 1
	}
	if len(ports) == 0 {
		fmt.Fprintln(stdout, "no serial ports found (is the scanner plugged in and in USB-CDC/serial mode? keyboard-wedge scanners do not appear here)")
		return 0
	}
	if err := serialport.FormatList(stdout, ports); err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
