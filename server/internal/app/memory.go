package app

import (
	"bufio"
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// memoryCollector reports where the server's resident memory goes, as
// shelfsync_memory_bytes{part}: the Go heap's live objects, the heap the
// runtime holds free or unused, goroutine stacks, the runtime's own
// metadata, and what is resident outside Go's accounting (mapped files and
// memory allocated outside the Go heap: Badger's table and value-log
// mmaps), which is the process's RSS minus what Go has mapped and not
// returned.
type memoryCollector struct {
	desc    *prometheus.Desc
	samples []metrics.Sample
}

// The runtime/metrics names the parts are read from.
var memoryParts = []struct{ part, metric string }{
	{"go_heap_objects", "/memory/classes/heap/objects:bytes"},
	{"go_heap_free", "/memory/classes/heap/free:bytes"},
	{"go_heap_unused", "/memory/classes/heap/unused:bytes"},
	{"go_stacks", "/memory/classes/heap/stacks:bytes"},
	{"go_stacks", "/memory/classes/os-stacks:bytes"},
	{"go_runtime", "/memory/classes/metadata/other:bytes"},
	{"go_runtime", "/memory/classes/metadata/mcache/inuse:bytes"},
	{"go_runtime", "/memory/classes/metadata/mcache/free:bytes"},
	{"go_runtime", "/memory/classes/metadata/mspan/inuse:bytes"},
	{"go_runtime", "/memory/classes/metadata/mspan/free:bytes"},
	{"go_runtime", "/memory/classes/profiling/buckets:bytes"},
	{"go_runtime", "/memory/classes/other:bytes"},
}

func registerMemoryMetrics(reg prometheus.Registerer) {
	c := &memoryCollector{desc: prometheus.NewDesc("shelfsync_memory_bytes",
		"Where the server's resident memory goes: Go heap objects, free and unused heap, stacks, runtime metadata, and outside_go (RSS beyond what Go has mapped: Badger's mmapped tables and value log, C allocations).",
		[]string{"part"}, nil)}
	for _, p := range memoryParts {
		c.samples = append(c.samples, metrics.Sample{Name: p.metric})
	}
	reg.MustRegister(c)
}

func (c *memoryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *memoryCollector) Collect(ch chan<- prometheus.Metric) {
	samples := append([]metrics.Sample(nil), c.samples...)
	metrics.Read(samples)
	parts := map[string]float64{}
	var order []string
	var goTotal float64
	for i, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			continue // a name this Go version does not have
		}
		p := memoryParts[i].part
		if _, ok := parts[p]; !ok {
			order = append(order, p)
		}
		v := float64(s.Value.Uint64())
		parts[p] += v
		goTotal += v
	}
	for _, p := range order {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, parts[p], p)
	}
	if rss, ok := residentBytes(); ok {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, max(rss-goTotal, 0), "outside_go")
	}
}

// residentBytes reads VmRSS from /proc/self/status (Linux only).
func residentBytes() (float64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				return 0, false
			}
			kib, err := strconv.ParseFloat(string(f[0]), 64)
			return kib * 1024, err == nil
		}
	}
	return 0, false
}
