package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/shelfsync/shelfsync/agent/internal/labels"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// runLabels prints a sheet of Code 128 labels: the scan vocabulary's
// commands, quantities and reasons, plus the locations, operators, owners
// and other labels asked for.
func runLabels(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shelfsync-agent labels", flag.ContinueOnError)
	fs.SetOutput(stderr)
	format := fs.String("format", "html", "html (a printable page per A4 sheet, each an SVG) or svg (one SVG document)")
	out := fs.String("out", "", "file to write (default: stdout)")
	noStd := fs.Bool("no-standard", false, "leave out the standard command, quantity and reason labels")
	var locs, ops, owners, extra listFlag
	fs.Var(&locs, "loc", "a location label LOC:<code>; repeatable, or comma-separated")
	fs.Var(&ops, "op", "an operator login label OP:<id>; repeatable, or comma-separated")
	fs.Var(&owners, "owner", "an owner label OWNER:<id> (a 3PL client: tells apart one GTIN kept by several owners); repeatable, or comma-separated")
	fs.Var(&extra, "label", "any label TEXT[=TITLE] (e.g. PO:4500012345=PO from Acme); repeatable")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: shelfsync-agent labels [flags]\n\nPrints Code 128 barcodes (ISO/IEC 15417) of the shelfsync scan vocabulary\non A4 sheets of 3 × 8 labels (63.5 × 33.9 mm).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "error: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var ls []labels.Label
	if !*noStd {
		ls = labels.Standard()
	}
	split := func(vs []string) []string {
		var out []string
		for _, v := range vs {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	for _, l := range split(locs) {
		ls = append(ls, labels.Label{Text: "LOC:" + l, Title: "Location " + l})
	}
	for _, o := range split(ops) {
		ls = append(ls, labels.Label{Text: "OP:" + o, Title: "Operator " + o + " logs in"})
	}
	for _, o := range split(owners) {
		ls = append(ls, labels.Label{Text: "OWNER:" + o, Title: "Owner " + o + "'s units"})
	}
	for _, e := range extra {
		text, title, _ := strings.Cut(e, "=")
		ls = append(ls, labels.Label{Text: text, Title: title})
	}
	if len(ls) == 0 {
		fmt.Fprintln(stderr, "error: no labels to print")
		return 2
	}
	w := stdout
	var f *os.File
	if *out != "" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(stderr, "error:", err)
			return 1
		}
		w = f
	}
	bw := bufio.NewWriter(w)
	var err error
	switch *format {
	case "html":
		err = labels.WriteHTML(bw, "shelfsync labels", ls)
	case "svg":
		err = labels.WriteSVG(bw, ls)
	default:
		err = fmt.Errorf("--format %q: want html or svg", *format)
	}
	if err == nil {
		err = bw.Flush()
	}
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	return 0
}
