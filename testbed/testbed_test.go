package testbed

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWaitForNamesWhatItWaitedFor(t *testing.T) {
	err := WaitFor(context.Background(), 50*time.Millisecond, "the moon", func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), "the moon") {
		t.Fatalf("got %v, want a timeout naming the moon", err)
	}
	n := 0
	if err := WaitFor(context.Background(), time.Minute, "three polls", func() bool { n++; return n == 3 }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := WaitFor(ctx, time.Minute, "never", func() bool { return false }); err == nil {
		t.Fatal("an ended context must end the wait")
	}
}

func TestMetricSumsTheMatchingSamples(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `# HELP x_total x
x_total{verdict="gap"} 2
x_total{verdict="ok"} 5
x_total{verdict="gap",gw="b"} 3
x_total_other{verdict="gap"} 100
`)
	}))
	defer srv.Close()
	for match, want := range map[string]float64{`verdict="gap"`: 5, "": 10, `verdict="none"`: 0} {
		got, err := Metric(srv.URL, "x_total", match)
		if err != nil || got != want {
			t.Errorf("Metric(x_total, %q) = %v, %v; want %v", match, got, err, want)
		}
	}
}

func TestStartKeepsOutputAndStopEscalates(t *testing.T) {
	// The child ignores SIGTERM: Stop must still end it (SIGKILL after
	// StopGrace) and Output must hold what it wrote.
	defer func(g time.Duration) { StopGrace = g }(StopGrace)
	StopGrace = 200 * time.Millisecond
	p, err := Start(Spec{Name: "stubborn", Bin: "/bin/sh", Args: []string{"-c", `trap "" TERM; echo ready; while :; do sleep 1; done`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitFor(context.Background(), time.Minute, "ready", func() bool { return strings.Contains(p.Output(), "ready") }); err != nil {
		t.Fatal(err)
	}
	p.Stop(syscall.SIGTERM)
	if p.Alive() {
		t.Fatal("still alive after Stop")
	}
}

func TestBuildIsOncePerRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the three binaries")
	}
	a, err := Build(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(t.Context())
	if err != nil || a != b {
		t.Fatalf("second Build: %v, %v; want the first's %v", b, err, a)
	}
	out, err := Start(Spec{Name: "sim", Bin: a.Sim, Args: []string{"--help"}})
	if err != nil {
		t.Fatal(err)
	}
	<-out.Done()
	if !strings.Contains(out.Output(), "barcode") {
		t.Fatalf("shelfsync-sim --help said:\n%s", out.Output())
	}
}
