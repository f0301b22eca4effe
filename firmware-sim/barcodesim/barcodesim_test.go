package barcodesim

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shelfsync/shelfsync/drivers/device"
	"github.com/shelfsync/shelfsync/drivers/feedback"
	"github.com/shelfsync/shelfsync/drivers/linemode"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var scans = []string{"4006381333931", "LOC:A-01", "]C10104006381333931\x1d10LOT7", "CMD:DONE"}

func TestLineSuffixes(t *testing.T) {
	tests := []struct {
		suffix string
		line   linemode.Config
		idle   time.Duration
	}{
		{"CRLF", linemode.Config{}, 0},
		{"CR", linemode.Config{}, 0},
		{"LF", linemode.Config{}, 0},
		{"TAB", linemode.Config{Terminator: "\t"}, 0},
		{"NONE", linemode.Config{}, 30 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.suffix, func(t *testing.T) {
			s := newSim(t, Config{Suffix: tt.suffix, SplitGap: time.Millisecond})
			_, out := runDevice(t, s, device.Config{Line: tt.line, IdleFlush: tt.idle})
			for _, text := range scans {
				require.NoError(t, s.Scan(text))
				if tt.suffix == "NONE" { // only silence separates scans
					collect(t, out, hasAll([]string{text}))
				}
			}
			if tt.suffix != "NONE" {
				got := collect(t, out, hasAll(scans))
				assert.Equal(t, scans, texts(got))
			}
		})
	}
}

func TestAIMAndGSModes(t *testing.T) {
	s := newSim(t, Config{AIM: "]E0", GSMode: GSStrip})
	_, out := runDevice(t, s, device.Config{})
	require.NoError(t, s.Scan("4006381333931"))
	require.NoError(t, s.Scan("01040063813339\x1d10LOT"))
	got := collect(t, out, hasAll([]string{"]E04006381333931", "]E00104006381333910LOT"}))
	assert.Len(t, got, 2)
}

func TestSSIFraming(t *testing.T) {
	s := newSim(t, Config{Framing: FramingSSI})
	d, out := runDevice(t, s, device.Config{Framing: device.FramingSSI})
	long := strings.Repeat("0123456789", 60) // three packets
	want := append(append([]string{}, scans...), long)
	for _, text := range want {
		require.NoError(t, s.Scan(text))
	}
	got := collect(t, out, hasAll(want))
	assert.Equal(t, want, texts(got))
	assert.Equal(t, "EAN-13", got[0].Symbology)
	assert.Equal(t, "GS1-128", got[2].Symbology)
	st := s.Stats()
	assert.Equal(t, uint64(len(want)+2), st.Acks, "one ACK per packet")
	assert.Zero(t, st.Retransmits)
	assert.Zero(t, d.Stats().FramingErrors)
}

func TestFeedbackReceived(t *testing.T) {
	tests := []struct {
		framing, kind string
	}{
		{FramingLine, feedback.KindHoneywell},
		{FramingLine, feedback.KindDatalogic},
		{FramingSSI, feedback.KindSSI},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			s := newSim(t, Config{Framing: tt.framing})
			d, _ := runDevice(t, s, device.Config{Framing: tt.framing, Feedback: tt.kind})
			for _, sig := range []feedback.Signal{feedback.Good, feedback.Bad, feedback.Warn} {
				require.NoError(t, d.Feedback(sig))
				select {
				case got := <-s.Feedback():
					assert.Equal(t, sig, got)
				case <-time.After(5 * time.Second):
					t.Fatalf("no %s feedback", sig)
				}
			}
		})
	}
}

func TestUnplugReplug(t *testing.T) {
	for _, framing := range []string{FramingLine, FramingSSI} {
		t.Run(framing, func(t *testing.T) {
			s := newSim(t, Config{Framing: framing, AckTimeout: time.Second})
			d, out := runDevice(t, s, device.Config{Framing: framing})
			require.NoError(t, s.Scan("before"))
			collect(t, out, hasAll([]string{"before"}))

			require.NoError(t, s.Unplug())
			waitFor(t, "disconnect", func() bool { return !d.Connected() })
			require.ErrorIs(t, d.Feedback(feedback.Good), device.ErrNotConnected)
			require.NoError(t, s.Replug())
			waitFor(t, "reconnect", d.Connected)

			require.NoError(t, s.Scan("after"))
			collect(t, out, hasAll([]string{"after"}))
			assert.GreaterOrEqual(t, d.Stats().Reconnects, uint64(1))
		})
	}
}

func TestFaults(t *testing.T) {
	sent := []string{"S1", "S2", "S3", "S4", "S5", "S6"}
	tests := []struct {
		framing, fault string
		want           []string // reads that must arrive, in order
		tooLong        int      // ErrLineTooLong reads expected
		exact          bool     // nothing but want arrives
		lockstep       bool     // wait for each read before the next scan
	}{
		{FramingLine, FaultGarbage, sent, 0, false, false},
		{FramingLine, FaultSplit, sent, 0, true, false},
		{FramingLine, FaultMerge, sent, 0, true, false},
		// Bytes in flight when the cable is pulled are lost, as with a real
		// USB device; an operator scans again once the scanner is back.
		{FramingLine, FaultUnplug, sent, 0, true, true},
		// A runaway line swallows the scan it runs into; the next is read.
		{FramingLine, FaultLongLine, []string{"S1", "S3", "S5"}, 3, false, false},
		{FramingSSI, FaultGarbage, sent, 0, true, false},
		{FramingSSI, FaultSplit, sent, 0, true, false},
		{FramingSSI, FaultMerge, sent, 0, true, false},
		{FramingSSI, FaultBadSum, sent, 0, true, false},
		{FramingSSI, FaultUnplug, sent, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.framing+"/"+tt.fault, func(t *testing.T) {
			s := newSim(t, Config{Framing: tt.framing, Fault: tt.fault, FaultEvery: 2, Seed: 7,
				UnplugFor: 30 * time.Millisecond, AckTimeout: time.Second, SplitGap: 5 * time.Millisecond})
			d, out := runDevice(t, s, device.Config{Framing: tt.framing})
			var got []device.Read
			for _, text := range sent {
				require.NoError(t, s.Scan(text))
				if tt.lockstep {
					got = append(got, collect(t, out, hasAll([]string{text}))...)
				}
			}
			require.NoError(t, s.Flush())
			got = append(got, collect(t, out, func(r []device.Read) bool {
				r = append(got, r...)
				return hasAll(tt.want)(r) && count(r, "<err>") >= tt.tooLong
			})...)
			if tt.exact {
				assert.Equal(t, tt.want, texts(got))
			}
			for _, r := range got {
				if r.Err != nil {
					require.ErrorIs(t, r.Err, linemode.ErrLineTooLong)
				}
			}
			assert.Equal(t, uint64(3), s.Stats().Faults)
			if tt.fault == FaultBadSum {
				assert.Equal(t, uint64(3), s.Stats().Retransmits)
				assert.Equal(t, uint64(3), d.Stats().FramingErrors)
			}
		})
	}
}

func TestNoAckWithoutHost(t *testing.T) {
	s := newSim(t, Config{Framing: FramingSSI, AckTimeout: 5 * time.Millisecond, Retries: 1})
	err := s.Scan("4006381333931")
	require.ErrorIs(t, err, ErrNoAck)
	assert.Equal(t, uint64(1), s.Stats().Retransmits)
}

func TestRunScript(t *testing.T) {
	s := newSim(t, Config{})
	_, out := runDevice(t, s, device.Config{})
	script := "# a receive session\nCMD:RECEIVE\n\n@sleep 1ms\n0104006381333931<GS>10LOT\nCMD:DONE\n"
	n, err := s.RunScript(context.Background(), strings.NewReader(script), 0)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	collect(t, out, hasAll([]string{"CMD:RECEIVE", "0104006381333931\x1d10LOT", "CMD:DONE"}))

	_, err = s.RunScript(context.Background(), strings.NewReader("@explode\n"), 0)
	require.ErrorContains(t, err, "unknown directive")
}

// TestRunScriptStopsWhileReadBlocks is what lets `make run` stop: the
// demo's scanner reads a fifo whose writer stays open, so a read never ends.
func TestRunScriptStopsWhileReadBlocks(t *testing.T) {
	s := newSim(t, Config{})
	runDevice(t, s, device.Config{})
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.RunScript(ctx, r, 0)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("RunScript still blocked on its reader 10s after its context ended")
	}
}

func TestRunRandom(t *testing.T) {
	cat, err := LoadCatalog(strings.NewReader("gtin,sku\n4006381333931,SKU-1\n# x\n\n5901234123457,SKU-2\n"))
	require.NoError(t, err)
	assert.Equal(t, []string{"4006381333931", "5901234123457"}, cat)
	s := newSim(t, Config{Seed: 3})
	_, out := runDevice(t, s, device.Config{})
	n, err := s.RunRandom(context.Background(), cat, 20, 0)
	require.NoError(t, err)
	assert.Equal(t, 20, n)
	got := collect(t, out, func(r []device.Read) bool { return len(r) == 20 })
	for _, r := range got {
		assert.Contains(t, cat, r.Text)
	}
	_, err = s.RunRandom(context.Background(), nil, 1, 0)
	require.Error(t, err)
}

func TestGuessCodeType(t *testing.T) {
	tests := map[string]string{
		"40063813":                "EAN-8",
		"012345678905":            "UPC-A",
		"4006381333931":           "EAN-13",
		"]E04006381333931":        "EAN-13",
		"14006381333938":          "Interleaved 2 of 5",
		"]C1010400638133393110AB": "GS1-128",
		"0104006381333931\x1d10X": "GS1-128",
		"https://id.gs1.org/01/1": "QR Code",
		"LOC:A-01":                "Code 128",
	}
	for text, want := range tests {
		c := GuessCodeType(text)
		assert.Equal(t, want, symbology(c), text)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Link"},
		{Config{Link: "x", Framing: "hid"}, "Framing"},
		{Config{Link: "x", Suffix: "SEMICOLON"}, "Suffix"},
		{Config{Link: "x", GSMode: "eat"}, "GSMode"},
		{Config{Link: "x", Fault: "fire"}, "Fault"},
		{Config{Link: "x", Fault: FaultBadSum}, "badsum"},
		{Config{Link: "x", Framing: FramingSSI, Fault: FaultLongLine}, "longline"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		require.Error(t, err)
		require.Contains(t, strings.ToLower(err.Error()), strings.ToLower(tt.want))
	}
	require.NoError(t, Config{Link: "x", Suffix: "tab"}.Validate())
	_, err := New(Config{})
	require.True(t, errors.Is(err, err) && err != nil)
}
