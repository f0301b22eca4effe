// Command shelfsync-agent-bench measures the gateway side of shelfsync and
// prints one JSON line per figure (name, value, unit, baseline,
// baseline_value, ratio), each against a baseline measured in the same
// run:
//
//	agent_durable_ops_per_s_1dev, _32dev  scans → durable ops vs a raw Badger durable txn loop
//	wire_bytes_per_op                      op batch as sent to a current server (ops-deflate) vs the same ops as JSON
//	catchup_1m_s                           1,000,000-op backlog drained by the real agent into the real server
//	agent_rss_mib_1m_outbox                the agent's peak RSS with that backlog queued (-only rss: just the RSS figures)
//	agent_rss_mib_1m_outbox_after_kill     the same, starting on a backlog left by kill -9 right after its last commit
//	rfid_reads_per_s                       RFID frames → decode → de-dup → EPC decode vs copying the frames
//	line_scans_per_s                       line-mode framing vs a raw read of the same bytes
//	pick_scan_us_10k_closed_tasks          a pick scan with 10,000 closed tasks held (task index) vs reading every task
//
// Run it from inside the repository (the catch-up builds the server and
// agent binaries with `go build`); `make bench` does.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Result is one figure.
type Result struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Ratio         float64 `json:"ratio"`
}

func result(name string, v float64, unit, baseline string, bv float64) Result {
	r := Result{Name: name, Value: round(v), Unit: unit, Baseline: baseline, BaselineValue: round(bv)}
	if bv != 0 {
		r.Ratio = round(v / bv)
	}
	return r
}

func round(v float64) float64 {
	switch {
	case v >= 1000:
		return float64(int64(v + 0.5))
	case v >= 1:
		return float64(int64(v*100+0.5)) / 100
	}
	return float64(int64(v*10000+0.5)) / 10000
}

func main() {
	if spec := os.Getenv(killedBacklogEnv); spec != "" {
		killedBacklogChild(spec) // catchup.go: never returns
	}
	var (
		out    string
		only   string
		dur    time.Duration
		backlg int
		cu     catchupOpts
		sargs  string
		aargs  string
	)
	flag.StringVar(&out, "out", "", "also append the JSON lines to this file")
	flag.StringVar(&only, "only", "", "comma-separated groups to run: durable,wire,catchup,rss,rfid,line,tasks (default all; rss: agent_rss_mib_1m_outbox alone, no server, no drain)")
	flag.DurationVar(&dur, "duration", 3*time.Second, "how long each throughput loop runs")
	flag.IntVar(&backlg, "backlog", 1_000_000, "ops in the catch-up backlog")
	flag.DurationVar(&cu.timeout, "catchup-timeout", 5*time.Minute, "stop waiting for the catch-up after this long and extrapolate")
	flag.StringVar(&sargs, "server-args", "", "extra shelfsync-server run flags for the catch-up (space-separated)")
	flag.StringVar(&aargs, "agent-args", "", "extra shelfsync-agent run flags for the catch-up (space-separated)")
	flag.BoolVar(&cu.keep, "keep", false, "keep the catch-up's work directory (stores and logs)")
	flag.BoolVar(&cu.drainOnly, "drain-only", false, "catchup: only the drain (catchup_*_s), without the agent_rss_mib_* steps before it — for iterating")
	flag.Parse()
	cu.serverArgs, cu.agentArgs = strings.Fields(sargs), strings.Fields(aargs)
	want := func(g string) bool { return only == "" || strings.Contains(","+only+",", ","+g+",") }

	var w io.Writer = os.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	emit := func(r Result) {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
	}
	ctx := context.Background()
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", what, err)
		os.Exit(1)
	}
	if want("durable") || want("wire") {
		rs, err := benchDurable(ctx, dur, want("durable"), want("wire"))
		if err != nil {
			fail("durable", err)
		}
		for _, r := range rs {
			emit(r)
		}
	}
	if want("rfid") {
		r, err := benchRFID(dur)
		if err != nil {
			fail("rfid", err)
		}
		emit(r)
	}
	if want("line") {
		emit(benchLine(dur))
	}
	if want("tasks") {
		r, err := benchPickScan(dur)
		if err != nil {
			fail("tasks", err)
		}
		emit(r)
	}
	if want("catchup") || want("rss") {
		cu.rssOnly = !want("catchup")
		rs, err := benchCatchup(ctx, backlg, cu)
		if err != nil {
			fail("catchup", err)
		}
		for _, r := range rs {
			emit(r)
		}
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
