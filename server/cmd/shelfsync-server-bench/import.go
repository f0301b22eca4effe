package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shelfsync/shelfsync/testbed"
)

// benchImport measures import_upload_rss_mib, import_rss_mib and
// import_rows_per_s: the server's peak RSS while it takes a stock CSV of
// size bytes (spooled to its data disk, counted, every row checked, then
// applied in chunks of api.ImportChunk rows, one transaction each),
// against the idle server, and the rows applied per second.
//
// The whole file is applied unless applyFor is set (then the rows applied
// in that time from the start of applying give the rate, and the peak is
// taken up to then). Memory is sampled through the applying, and the RSS
// at each tenth of the file's rows is logged, so whether it stays flat in
// the file's size shows: import_rss_growth_mib is the RSS at the last
// tenth sampled less the RSS at the first. Every row of the file is a
// stock key of its own (a new sku), the worst case for the server's
// in-memory models, which hold stock per sku and per lot.
func benchImport(ctx context.Context, size int64, skus int, applyFor time.Duration) ([]Result, error) {
	bins, err := testbed.Build(ctx)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "shelfsync-bench-import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	httpAddr, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	mqttAddr, err := testbed.FreeAddr()
	if err != nil {
		return nil, err
	}
	srv, err := testbed.Start(testbed.Spec{Name: "server", LogFile: filepath.Join(work, "server.log"), Bin: bins.Server,
		Args: []string{"run", "--data", filepath.Join(work, "server"), "--http", httpAddr, "--mqtt", mqttAddr, "--log-level", "warn"}})
	if err != nil {
		return nil, err
	}
	defer srv.Stop(syscall.SIGTERM)
	if err := testbed.WaitFor(ctx, testbed.StartTimeout, "server healthy", func() bool { return testbed.HTTPOK("http://" + httpAddr + "/healthz") }); err != nil {
		return nil, err
	}
	time.Sleep(time.Second)
	idle := readProcMem(srv.Pid())

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeStockCSV(pw, size, skus)) }()
	start := time.Now()
	resp, err := http.Post("http://"+httpAddr+"/api/v1/imports/stock?by=bench", "text/csv", pr)
	if err != nil {
		return nil, err
	}
	var job struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Phase  string `json:"phase"`
		Total  int    `json:"total"`
		Done   int    `json:"done"`
		Failed int    `json:"failed"`
	}
	err = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("import answered %d: %v (peak RSS %.1f MiB, idle %.1f)", resp.StatusCode, err, mib(testbed.PeakRSS(srv.Pid())), mib(idle.rss))
	}
	accepted := time.Since(start)
	atAccept := testbed.PeakRSS(srv.Pid())
	poll := func() {
		if r, err := http.Get("http://" + httpAddr + "/api/v1/imports/" + job.ID); err == nil {
			_ = json.NewDecoder(r.Body).Decode(&job)
			r.Body.Close()
		}
	}
	// Every row is checked before any is applied: the rate is taken
	// from when applying starts, the peak over the whole time.
	checkStart := time.Now()
	for poll(); job.Status == "running" && job.Phase != "applying"; poll() {
		if time.Since(checkStart) > 5*time.Minute {
			return nil, fmt.Errorf("import still checking after %s", time.Since(checkStart).Round(time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	checked := time.Since(checkStart)
	from, applyStart := job.Done, time.Now()
	// Sample memory while applying: the highest anonymous RSS (the heap:
	// VmHWM also counts the pages of Badger's memory-mapped tables), and
	// the RSS at each tenth of the rows.
	var peakAnon int64
	var tenths []procMem // the sample at 10%, 20%, … of the rows
	next := 1
	for job.Status == "running" {
		m := readProcMem(srv.Pid())
		peakAnon = max(peakAnon, m.anon)
		for job.Total > 0 && next <= 10 && job.Done >= job.Total*next/10 {
			m.rows, m.at = job.Done, time.Since(applyStart)
			tenths = append(tenths, m)
			logf("import: %3d%% %8d rows in %6.1fs: RSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB", next*10, job.Done, m.at.Seconds(), mib(m.rss), mib(m.anon), mib(m.file), mib(m.hwm))
			next++
		}
		if applyFor > 0 && time.Since(applyStart) >= applyFor {
			break
		}
		time.Sleep(250 * time.Millisecond)
		poll()
	}
	took := time.Since(applyStart)
	applied := job.Done - from
	end := readProcMem(srv.Pid())
	peakAnon = max(peakAnon, end.anon)
	if applyFor == 0 && job.Status != "done" {
		return nil, fmt.Errorf("import ended %s with %d of %d rows applied and %d failed", job.Status, job.Done, job.Total, job.Failed)
	}
	if parts, err := readMemory("http://" + httpAddr + "/metrics"); err == nil {
		logf("import: where the memory goes after applying (shelfsync_memory_bytes): %s", parts)
	}
	logf("import: %d MB uploaded, spooled and counted (%d rows) in %s (peak RSS then %.1f MiB), every row checked in %s; %d rows applied in %s (%d failed); server peak RSS %.1f MiB, peak anonymous RSS %.1f MiB (idle %.1f, anon %.1f)",
		size/1e6, job.Total, accepted.Round(time.Millisecond), mib(atAccept), checked.Round(time.Millisecond), applied, took.Round(time.Millisecond), job.Failed, mib(end.hwm), mib(peakAnon), mib(idle.rss), mib(idle.anon))
	what := "the whole file applied"
	if applyFor > 0 {
		what = fmt.Sprintf("the first %s of applying", applyFor)
	}
	file := fmt.Sprintf("%d MB CSV of %d rows over %d skus", size/1e6, job.Total, skus)
	if skus == 0 {
		file = fmt.Sprintf("%d MB CSV of %d rows, each a new sku", size/1e6, job.Total)
	}
	rs := []Result{
		result("import_upload_rss_mib", mib(atAccept-idle.rss), "MiB", fmt.Sprintf("over the idle server, %s uploaded, spooled and counted", file), mib(idle.rss)),
		result("import_rss_mib", mib(end.hwm-idle.rss), "MiB", fmt.Sprintf("peak over the idle server, %s (upload, count, check, %s)", file, what), mib(idle.rss)),
		result("import_anon_rss_mib", mib(peakAnon-idle.anon), "MiB", fmt.Sprintf("peak anonymous RSS (not Badger's mapped table files) over the idle server's, %s, %s", file, what), mib(idle.anon)),
		result("import_rows_per_s", float64(applied)/took.Seconds(), "rows/s", fmt.Sprintf("stock CSV rows applied (new keys, chunks of 256 rows), %s", what), 0),
	}
	if len(tenths) >= 2 {
		first, last := tenths[0], tenths[len(tenths)-1]
		rs = append(rs, result("import_rss_growth_mib", mib(last.rss-first.rss), "MiB",
			fmt.Sprintf("RSS at %d%% of the rows applied less at 10%% (flat in the file's size: about 0)", len(tenths)*10), mib(first.rss)))
	}
	return rs, nil
}

// procMem is a process's memory from /proc/<pid>/status.
type procMem struct {
	rss, anon, file, hwm int64 // VmRSS, RssAnon, RssFile, VmHWM
	rows                 int
	at                   time.Duration
}

func readProcMem(pid int) procMem {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(val), "%d kB", &kb); err != nil {
			continue
		}
		switch name {
		case "VmRSS":
			m.rss = kb << 10
		case "RssAnon":
			m.anon = kb << 10
		case "RssFile":
			m.file = kb << 10
		case "VmHWM":
			m.hwm = kb << 10
		}
	}
	return m
}

// writeStockCSV writes a stock CSV of about size bytes in which every row
// is a stock key of its own: skus distinct skus (0: every row a new sku),
// each in up to 3 of 1,000 locations, the rows of a sku told apart by lot.
func writeStockCSV(w io.Writer, size int64, skus int) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	n, err := fmt.Fprintln(bw, "warehouse,location,sku,qty,lot")
	written := int64(n)
	for i := 0; err == nil && written < size; i++ {
		sku, lot := i, i%5000
		if skus > 0 {
			sku, lot = i%skus, i/skus
		}
		n, err = fmt.Fprintf(bw, "wh1,BIN-%04d,SKU-%09d,%d,LOT-%06d\n", (sku*7+lot%3)%1000, sku, 1+i%97, lot)
		written += int64(n)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}
