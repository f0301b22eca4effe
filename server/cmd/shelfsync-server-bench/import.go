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
	"syscall"
	"time"

	"github.com/shelfsync/shelfsync/testbed"
)

// benchImport measures import_upload_rss_mib and import_rss_mib: the
// server's peak RSS while it takes
// a 200 MB stock CSV (spooled to its data disk, counted, every row checked,
// then applied in chunks of api.ImportChunk rows, one transaction each),
// against the idle server, and import_rows_per_s. Applying the file's 4.9M
// rows takes longer than a bench may; the peak is sampled through the
// upload, the count, the check and applyFor of applying, and the rows
// applied in that time (from the start of applying) give the rate. Every row of the file is a stock key of its own, so the
// server's in-memory stock model (orders' available-to-sell index) grows
// with the rows applied: that part grows with the warehouse's keys, not
// with the import.
func benchImport(ctx context.Context, size int64, applyFor time.Duration) ([]Result, error) {
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
	idle := testbed.PeakRSS(srv.Pid())

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeStockCSV(pw, size)) }()
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
	}
	err = json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("import answered %d: %v (peak RSS %.1f MiB, idle %.1f)", resp.StatusCode, err, mib(testbed.PeakRSS(srv.Pid())), mib(idle))
	}
	accepted := time.Since(start)
	atAccept := testbed.PeakRSS(srv.Pid())
	doneAt := func() int {
		if r, err := http.Get("http://" + httpAddr + "/api/v1/imports/" + job.ID); err == nil {
			_ = json.NewDecoder(r.Body).Decode(&job)
			r.Body.Close()
		}
		return job.Done
	}
	// Every row is checked before any is applied: the rate is taken
	// from when applying starts, the peak over the whole time.
	checkStart := time.Now()
	for doneAt(); job.Status == "running" && job.Phase != "applying"; doneAt() {
		if time.Since(checkStart) > 5*time.Minute {
			return nil, fmt.Errorf("import still checking after %s", time.Since(checkStart).Round(time.Second))
		}
		time.Sleep(100 * time.Millisecond)
	}
	checked := time.Since(checkStart)
	from := job.Done
	time.Sleep(applyFor)
	applied := doneAt() - from
	peak := testbed.PeakRSS(srv.Pid())
	if parts, err := readMemory("http://" + httpAddr + "/metrics"); err == nil {
		logf("import: where the memory goes after applying (shelfsync_memory_bytes): %s", parts)
	}
	logf("import: %d MB uploaded, spooled and counted (%d rows) in %s (peak RSS then %.1f MiB), every row checked in %s; %d rows applied in the next %s; server peak RSS %.1f MiB (idle %.1f)",
		size/1e6, job.Total, accepted.Round(time.Millisecond), mib(atAccept), checked.Round(time.Millisecond), applied, applyFor, mib(peak), mib(idle))
	return []Result{
		result("import_upload_rss_mib", mib(atAccept-idle), "MiB", fmt.Sprintf("over the idle server, %d MB CSV uploaded, spooled and counted", size/1e6), mib(idle)),
		result("import_rss_mib", mib(peak-idle), "MiB", fmt.Sprintf("over the idle server, %d MB CSV (upload, count, check, %s of applying)", size/1e6, applyFor), mib(idle)),
		result("import_rows_per_s", float64(applied)/applyFor.Seconds(), "rows/s", "stock CSV rows applied (new keys, chunks of 256 rows)", 0),
	}, nil
}

// writeStockCSV writes a stock CSV of about size bytes: distinct keys over
// 1,000 locations.
func writeStockCSV(w io.Writer, size int64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	n, err := fmt.Fprintln(bw, "warehouse,location,sku,qty,lot")
	written := int64(n)
	for i := 0; err == nil && written < size; i++ {
		n, err = fmt.Fprintf(bw, "wh1,BIN-%04d,SKU-%09d,%d,LOT-%06d\n", i%1000, i, 1+i%97, i%5000)
		written += int64(n)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}
