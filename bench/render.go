//go:build ignore

// render merges the JSON lines the benchmark programs append to
// bench/results.jsonl (the last line of each name wins) and writes
// BENCHMARKS.md: the table, the targets, how to reproduce, and the
// analysis kept in bench/NOTES.md. Standard library only:
//
//	go run ./bench/render.go -in bench/results.jsonl -notes bench/NOTES.md -out BENCHMARKS.md
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type result struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Ratio         float64 `json:"ratio"`
}

// figure is a benchmark name in table order, with its target.
type figure struct {
	name, what string
	// check returns the target text and whether r meets it ("" when the
	// figure has no target).
	check func(r result) (string, bool)
}

func atLeast(v float64, unit string) func(result) (string, bool) {
	return func(r result) (string, bool) { return fmt.Sprintf("≥ %s %s", num(v), unit), r.Value >= v }
}

func atMost(v float64, unit string) func(result) (string, bool) {
	return func(r result) (string, bool) { return fmt.Sprintf("≤ %s %s", num(v), unit), r.Value <= v }
}

var figures = []figure{
	{"agent_durable_ops_per_s_1dev", "agent durable ops/s, 1 device", nil},
	{"agent_durable_ops_per_s_32dev", "agent durable ops/s, 32 devices", atLeast(20000, "ops/s")},
	{"scan_to_durable_p50_ms", "scan → durable (good beep), p50", nil},
	{"scan_to_durable_p99_ms", "scan → durable (good beep), p99, 1 device", atMost(2, "ms")},
	{"scan_to_server_p50_ms", "scan → server stock API, p50", nil},
	{"scan_to_server_p99_ms", "scan → server stock API, p99", nil},
	{"server_ingest_ops_per_s", "server ingest from 100 gateways", func(r result) (string, bool) {
		return "≥ 100,000 ops/s and ≥ 0.5 × raw", r.Value >= 100000 && r.Ratio >= 0.5
	}},
	{"catchup_1m_s", "catch-up of a 1,000,000-op backlog", atMost(20, "s")},
	{"wire_bytes_per_op", "bytes per op on the wire (op batch as sent)", atMost(40, "B")},
	{"agent_rss_mib_1m_outbox", "agent peak RSS, 1,000,000 ops queued", atMost(64, "MiB")},
	{"agent_rss_mib_1m_outbox_after_kill", "agent peak RSS, start on 1,000,000 ops left by kill -9", atMost(64, "MiB")},
	{"server_cpu_s_per_kop_badger", "server CPU s per 1,000 ops ingested (Badger), vs the raw write's", nil},
	{"server_rss_mib_100gw", "server peak RSS, 100 gateways ingesting", atMost(256, "MiB")},
	{"server_ingest_ops_per_s_postgres_1replica", "server ingest on PostgreSQL, 1 replica", func(r result) (string, bool) {
		return "≥ 0.5 × Badger", r.Ratio >= 0.5
	}},
	{"server_ingest_ops_per_s_postgres_3replicas", "server ingest on PostgreSQL, 3 replicas (clustered embedded brokers)", nil},
	{"server_cpu_s_per_kop_1replica", "CPU s per 1,000 applied ops (server + PostgreSQL), 1 replica", nil},
	{"server_cpu_s_per_kop_3replicas", "CPU s per 1,000 applied ops (servers + PostgreSQL), 3 replicas", func(r result) (string, bool) {
		return "≤ 1.25 × 1 replica", r.Ratio <= 1.25
	}},
	{"rfid_reads_per_s", "RFID reads/s, decode + de-dup", atLeast(200000, "reads/s")},
	{"line_scans_per_s", "line-mode scans/s (drivers/linemode)", nil},
	{"pick_scan_us_10k_closed_tasks", "pick scan with 10,000 closed tasks held, per scan (vs reading every task)", func(r result) (string, bool) {
		return "≤ 0.1 × every task", r.Ratio <= 0.1
	}},
	{"order_intake_per_s", "order/hold intake, 3 channels × 32 clients racing for the last units", func(r result) (string, bool) {
		return "≥ 1 × raw", r.Ratio >= 1
	}},
	{"order_p99_ms", "order/hold intake latency, p99", atMost(50, "ms")},
	{"import_rss_mib", "server peak RSS over idle, 200 MB stock CSV imported whole", atMost(64, "MiB")},
	{"import_anon_rss_mib", "server peak anonymous RSS over idle (the heap; not Badger's mapped tables), same import", nil},
	{"import_rss_growth_mib", "server RSS at the import's last tenth less at its first (flat: about 0)", nil},
	{"import_rows_per_s", "stock CSV rows applied per second, whole file", nil},
}

func num(v float64) string {
	switch {
	case v >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func main() {
	in := flag.String("in", "bench/results.jsonl", "JSON lines of the benchmark programs")
	notes := flag.String("notes", "bench/NOTES.md", "analysis appended to the page (optional)")
	out := flag.String("out", "BENCHMARKS.md", "page to write")
	flag.Parse()

	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	latest := map[string]result{}
	var extra []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Name == "" {
			fmt.Fprintf(os.Stderr, "render: skipping %q: %v\n", line, err)
			continue
		}
		if _, ok := latest[r.Name]; !ok && !known(r.Name) {
			extra = append(extra, r.Name)
		}
		latest[r.Name] = r
	}
	f.Close()

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Benchmarks\n\n")
	fmt.Fprintf(&b, "Latest `make bench` on %s: %s, %d cores, %s, %s. Every figure is measured against a baseline in the same run; ratio = value / baseline.\n\n",
		time.Now().UTC().Format("2006-01-02"), cpuModel(), runtime.NumCPU(), runtime.Version(), memTotal())
	fmt.Fprintf(&b, "| figure | name | value | baseline | ratio | target | |\n|---|---|---:|---|---:|---|---|\n")
	missing := 0
	row := func(fig figure, r result, ok bool) {
		if !ok {
			missing++
			fmt.Fprintf(&b, "| %s | `%s` | — | not measured | | | ✗ |\n", fig.what, fig.name)
			return
		}
		target, mark := "—", ""
		if fig.check != nil {
			t, met := fig.check(r)
			target, mark = t, "✗ missed"
			if met {
				mark = "✓ met"
			}
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s %s | %s: %s | %s | %s | %s |\n",
			fig.what, fig.name, num(r.Value), r.Unit, r.Baseline, num(r.BaselineValue), num(r.Ratio), target, mark)
	}
	for _, fig := range figures {
		r, ok := latest[fig.name]
		row(fig, r, ok)
	}
	for _, name := range extra {
		row(figure{name: name, what: name}, latest[name], true)
	}
	fmt.Fprintf(&b, `
## Reproduce

`+"```sh"+`
make bench        # ~25 min: writes bench/results.jsonl and this page
`+"```"+`

which runs, from the repository root:

`+"```sh"+`
: > bench/results.jsonl
go run ./agent/cmd/shelfsync-agent-bench  -out bench/results.jsonl   # durable ops/s, wire bytes, RFID, line mode, catch-up, agent RSS
go run ./server/cmd/shelfsync-server-bench -out bench/results.jsonl  # ingest from 100 gateways, server RSS
go run ./firmware-sim/cmd/shelfsync-chaos latency -out bench/results.jsonl  # scan → durable / server over a real pty
go run ./bench/render.go -in bench/results.jsonl -notes bench/NOTES.md -out BENCHMARKS.md
`+"```"+`

Each program prints one JSON line per figure, `+"`"+`{"name","value","unit","baseline","baseline_value","ratio"}`+"`"+`;
the names are stable. The catch-up, ingest and latency figures run the real
`+"`shelfsync-server`"+` and `+"`shelfsync-agent`"+` binaries (built with `+"`go build`"+`) on
loopback; `+"`-h`"+` on each program lists its knobs (e.g. `+"`-catchup-timeout`"+`,
`+"`-server-args`"+`, `+"`-agent-args`"+`, `+"`-gateways`"+`, `+"`-scans`"+`).
`)
	if n, err := os.ReadFile(*notes); err == nil {
		b.WriteString("\n")
		b.Write(n)
	}
	if err := os.WriteFile(*out, b.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "render: %s written (%d figures, %d not measured)\n", *out, len(latest), missing)
}

func known(name string) bool {
	for _, f := range figures {
		if f.name == name {
			return true
		}
	}
	return false
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	out, err := exec.Command("sh", "-c", "free -g | awk '/Mem:/{print $2}'").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out)) + " GiB RAM"
}
