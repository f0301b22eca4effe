//go:build ignore

// testreport reads `go test -json` on stdin and prints a short report: one
// line per package, the output of every failed test, and every skipped
// test with its reason. It exits 1 when a test or a build failed, or when
// a test skipped for a reason the allowlist does not name.
//
//	go test -json ./... | go run .ci/testreport.go -allow .ci/skips-test.txt
//
// An allowlist line is a substring of an allowed skip reason ("SHELFSYNC_TEST_PG
// is not set"), or "test:" and a glob of the test's name ("test:TestDeps");
// "#" starts a comment. Without -allow no skip is allowed. Standard library
// only, like bench/render.go.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

type event struct {
	Action      string
	Package     string
	ImportPath  string
	Test        string
	Elapsed     float64
	Output      string
	FailedBuild string
}

type rule struct{ reason, test string }

func (r rule) allows(test, reason string) bool {
	if r.test != "" {
		ok, _ := path.Match(r.test, test)
		return ok
	}
	return strings.Contains(reason, r.reason)
}

func loadRules(file string) ([]rule, error) {
	if file == "" {
		return nil, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var rules []rule
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "":
		case strings.HasPrefix(line, "test:"):
			rules = append(rules, rule{test: strings.TrimSpace(strings.TrimPrefix(line, "test:"))})
		default:
			rules = append(rules, rule{reason: line})
		}
	}
	return rules, nil
}

type skip struct{ pkg, test, reason string }

func main() {
	allow := flag.String("allow", "", "file of allowed skip reasons (see the package comment); none allowed without it")
	flag.Parse()
	rules, err := loadRules(*allow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	code := report(os.Stdin, os.Stdout, rules)
	os.Exit(code)
}

func report(in io.Reader, out io.Writer, rules []rule) int {
	outputs := map[string][]string{} // pkg + "\x00" + test → output lines
	running := map[string]bool{}     // tests started and not ended, by the same key
	failed := map[string]bool{}      // packages reported failed
	var skips []skip
	failedTests, failedPkgs, buildFails := 0, 0, 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintln(out, string(line)) // not an event: a build error of an older go, make's own lines
			continue
		}
		key := e.Package + "\x00" + e.Test
		switch e.Action {
		case "run":
			running[key] = true
		case "output", "build-output":
			if e.Action == "build-output" {
				key = e.ImportPath + "\x00"
			}
			outputs[key] = append(outputs[key], e.Output)
		case "build-fail":
			buildFails++
			fmt.Fprintf(out, "BUILD FAIL %s\n%s", e.ImportPath, strings.Join(outputs[e.ImportPath+"\x00"], ""))
		case "fail":
			delete(running, key)
			if e.Test != "" {
				failedTests++
				fmt.Fprintf(out, "--- FAIL: %s %s (%.2fs)\n%s", e.Package, e.Test, e.Elapsed, strings.Join(outputs[key], ""))
				continue
			}
			if failed[e.Package] {
				continue
			}
			failed[e.Package] = true
			failedPkgs++
			fmt.Fprintf(out, "FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
			if e.FailedBuild == "" { // a panic, a timeout: what the package printed, and the tests it cut short
				fmt.Fprint(out, tail(outputs[key], 60))
				for k := range running {
					if pkg, test, _ := strings.Cut(k, "\x00"); pkg == e.Package {
						fmt.Fprintf(out, "--- cut short: %s %s\n%s", pkg, test, tail(outputs[k], 60))
					}
				}
			}
		case "pass":
			delete(running, key)
			if e.Test == "" {
				fmt.Fprintf(out, "ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
			}
			delete(outputs, key)
		case "skip":
			delete(running, key)
			if e.Test != "" {
				skips = append(skips, skip{e.Package, e.Test, reason(outputs[key])})
			}
			delete(outputs, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testreport: reading go test -json:", err)
		return 2
	}
	sort.Slice(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	unexpected := 0
	if len(skips) > 0 {
		fmt.Fprintf(out, "\n== %d skipped tests\n", len(skips))
	}
	for _, s := range skips {
		verdict := "UNEXPECTED"
		for _, r := range rules {
			if r.allows(s.test, s.reason) {
				verdict = "expected"
				break
			}
		}
		if verdict == "UNEXPECTED" {
			unexpected++
		}
		fmt.Fprintf(out, "%-10s %s %s: %s\n", verdict, s.pkg, s.test, s.reason)
	}
	fmt.Fprintf(out, "\n== testreport: %d failed tests, %d failed packages, %d build failures, %d skips (%d unexpected)\n",
		failedTests, failedPkgs, buildFails, len(skips), unexpected)
	if failedTests+failedPkgs+buildFails+unexpected > 0 {
		return 1
	}
	return 0
}

// reason is what a skipped test printed besides go test's own markers.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func tail(lines []string, n int) string {
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
