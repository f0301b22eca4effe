package main

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// memoryParts is the server's shelfsync_memory_bytes, part → bytes.
type memoryParts map[string]float64

// readMemory scrapes shelfsync_memory_bytes from a server's /metrics.
func readMemory(url string) (memoryParts, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := memoryParts{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `shelfsync_memory_bytes{part="`)
		if !ok {
			continue
		}
		part, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err == nil {
			m[part] = v
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%s: no shelfsync_memory_bytes", url)
	}
	return m, sc.Err()
}

func (m memoryParts) total() float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// heap is the Go heap's live objects.
func (m memoryParts) heap() float64 { return m["go_heap_objects"] }

func (m memoryParts) String() string {
	parts := make([]string, 0, len(m))
	for p := range m {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return m[parts[i]] > m[parts[j]] })
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.1f MiB", p, m[p]/(1<<20))
	}
	return b.String()
}
