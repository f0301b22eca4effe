package rfidsim

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/epc"
	"github.com/shelfsync/shelfsync/drivers/rfid"
)

// population returns n SGTIN-96 tags of one GTIN (TDS example company
// prefix 0614141), pinned round-robin to antennas 1..pins (0: unpinned).
func population(t *testing.T, n, pins int) []Tag {
	tags := make([]Tag, n)
	for i := range tags {
		b, err := epc.EncodeSGTIN96(1, "80614141123458", 7, uint64(1000+i))
		require.NoError(t, err)
		tags[i] = Tag{EPC: b}
		if pins > 0 {
			tags[i].Antenna = 1 + i%pins
		}
	}
	return tags
}

func startSim(t *testing.T, cfg Config, tags []Tag) *Sim {
	cfg.Link = filepath.Join(t.TempDir(), "rfid0")
	s, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	s.SetTags(tags)
	return s
}

// openPort opens the simulator's link as a driver does (raw pty slave).
func openPort(t *testing.T, s *Sim) *os.File {
	f, err := os.OpenFile(s.Link(), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// readUntil runs a Reader on the simulator until done(seen) holds, for at
// most 10 s, and returns the reads by EPC hex.
func readUntil(t *testing.T, s *Sim, cfg rfid.Config, done func(map[string]rfid.TagRead) bool) map[string]rfid.TagRead {
	r, err := rfid.New(openPort(t, s), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seen := map[string]rfid.TagRead{}
	err = r.Run(ctx, func(tr rfid.TagRead) {
		seen[hex.EncodeToString(tr.EPC)] = tr
		if done(seen) {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled, "reads so far: %d of the simulator's %d; stats %+v / %+v", len(seen), len(s.Tags()), r.Stats(), s.Stats())
	return seen
}

func all(tags []Tag) func(map[string]rfid.TagRead) bool {
	return func(seen map[string]rfid.TagRead) bool {
		for _, tag := range tags {
			if _, ok := seen[hex.EncodeToString(tag.EPC)]; !ok {
				return false
			}
		}
		return true
	}
}

func TestUHF18OverPTY(t *testing.T) {
	for _, fault := range []string{FaultNone, FaultGarbage, FaultBadCRC} {
		t.Run("fault="+fault, func(t *testing.T) {
			tags := population(t, 40, 0) // 40 tags: three inventory frames
			s := startSim(t, Config{Protocol: rfid.UHF18, Fault: fault, FaultEvery: 2}, tags)
			seen := readUntil(t, s, rfid.Config{Protocol: rfid.UHF18, Interval: 20 * time.Millisecond,
				Timeout: 200 * time.Millisecond}, all(tags))
			assert.Len(t, seen, len(tags))
			for _, tr := range seen {
				assert.Equal(t, 1, tr.Antenna)
			}
			if fault != FaultNone {
				assert.Positive(t, s.Stats().Faults)
			}
		})
	}
}

func TestUHF18SetTags(t *testing.T) {
	first := population(t, 3, 0)
	s := startSim(t, Config{Protocol: rfid.UHF18, Address: 0x05}, first)
	port := openPort(t, s)
	r, err := rfid.New(port, rfid.Config{Protocol: rfid.UHF18, Address: 0x05, Interval: 10 * time.Millisecond})
	require.NoError(t, err)
	second := population(t, 6, 0)[3:]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var once sync.Once
	seen := map[string]bool{}
	err = r.Run(ctx, func(tr rfid.TagRead) {
		seen[hex.EncodeToString(tr.EPC)] = true
		if hasAll(seen, first) {
			once.Do(func() { s.SetTags(second) }) // the shelf is restocked
		}
		if hasAll(seen, second) {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, hasAll(seen, second))
}

func hasAll(seen map[string]bool, tags []Tag) bool {
	for _, tag := range tags {
		if !seen[hex.EncodeToString(tag.EPC)] {
			return false
		}
	}
	return true
}

func TestMercuryOverPTY(t *testing.T) {
	for _, fault := range []string{FaultNone, FaultGarbage, FaultBadCRC} {
		t.Run("fault="+fault, func(t *testing.T) {
			tags := population(t, 8, 2) // pinned to antennas 1 and 2
			tags = append(tags, population(t, 9, 0)[8])
			s := startSim(t, Config{Protocol: rfid.Mercury, Antennas: 2, Rate: 2000, RSSIMin: -60, RSSIMax: -50,
				Fault: fault, FaultEvery: 3}, tags)
			seen := readUntil(t, s, rfid.Config{Protocol: rfid.Mercury, Timeout: time.Second}, all(tags))
			for _, tag := range tags[:8] {
				tr := seen[hex.EncodeToString(tag.EPC)]
				assert.Equal(t, tag.Antenna, tr.Antenna)
				assert.GreaterOrEqual(t, tr.RSSI, -60)
				assert.LessOrEqual(t, tr.RSSI, -50)
			}
			st := s.Stats()
			assert.Positive(t, st.Reads)
			if fault != FaultNone {
				assert.Positive(t, st.Faults)
			}
		})
	}
}

// The reader's reads through Dedup (RunDedup): one merged read per tag
// and antenna per window, counts adding up to the raw reads.
func TestMercuryDedup(t *testing.T) {
	tags := population(t, 5, 0)
	s := startSim(t, Config{Protocol: rfid.Mercury, Rate: 5000}, tags)
	r, err := rfid.New(openPort(t, s), rfid.Config{Protocol: rfid.Mercury})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	merged := 0
	windows := map[string]int{}
	err = r.RunDedup(ctx, 100*time.Millisecond, func(tr rfid.TagRead) {
		merged += tr.Count
		windows[hex.EncodeToString(tr.EPC)]++
		if len(windows) == len(tags) && merged >= 2000 {
			cancel()
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Len(t, windows, len(tags))
	assert.Equal(t, int(r.Stats().Reads), merged, "every raw read is in exactly one merged read")
	for epc, n := range windows {
		assert.Less(t, n, 100, "tag %s: one read per window, not per raw read", epc)
	}
}

func TestMercuryVersionAndUnknownOpcode(t *testing.T) {
	s := startSim(t, Config{Protocol: rfid.Mercury}, nil)
	port := openPort(t, s)
	cmd, _ := rfid.AppendMercuryCommand(nil, rfid.MercuryOpVersion, nil)
	cmd, _ = rfid.AppendMercuryCommand(cmd, 0x10, nil) // not implemented
	_, err := port.Write(cmd)
	require.NoError(t, err)
	dec := &rfid.MercuryDecoder{FromReader: true}
	var frames []rfid.MercuryFrame
	buf := make([]byte, 256)
	require.NoError(t, port.SetReadDeadline(time.Now().Add(5*time.Second)))
	for len(frames) < 2 {
		n, err := port.Read(buf)
		require.NoError(t, err)
		_, _ = dec.Write(buf[:n])
		for f, ok := dec.Next(); ok; f, ok = dec.Next() {
			m, err := rfid.ParseMercury(bytes.Clone(f), true)
			require.NoError(t, err)
			frames = append(frames, m)
		}
	}
	assert.Equal(t, byte(rfid.MercuryOpVersion), frames[0].Op)
	assert.Len(t, frames[0].Data, 20)
	assert.Equal(t, uint16(rfid.MercuryStatusBadOpcode), frames[1].Status)
}

func TestParseTags(t *testing.T) {
	tags, err := ParseTags(strings.NewReader("# shelf A\n3074257BF7194E4000001A85\n\n  3074257bf7194e4000001a86 2\n"))
	require.NoError(t, err)
	require.Len(t, tags, 2)
	assert.Equal(t, 0, tags[0].Antenna)
	assert.Equal(t, 2, tags[1].Antenna)
	assert.Equal(t, "3074257bf7194e4000001a86", hex.EncodeToString(tags[1].EPC))

	for in, want := range map[string]string{
		"XYZ\n":                      "line 1: EPC \"XYZ\"",
		"3074 1 2\n":                 "line 1: want \"EPC [antenna]\"",
		"# c\n3074257BF7194E40 16\n": "line 2: antenna \"16\"",
		strings.Repeat("AB", 63):     "1 to 62 bytes",
	} {
		_, err := ParseTags(strings.NewReader(in))
		assert.ErrorContains(t, err, want, in)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Link: "/tmp/x", Protocol: rfid.UHF18}
	require.NoError(t, ok.Validate())
	for want, c := range map[string]Config{
		"Config.Link":     {Protocol: rfid.UHF18},
		"Config.Protocol": {Link: "x", Protocol: "llrp"},
		"Config.Antennas": {Link: "x", Protocol: rfid.UHF18, Antennas: 16},
		"Config.Rate":     {Link: "x", Protocol: rfid.UHF18, Rate: -1},
		"Config.RSSIMin":  {Link: "x", Protocol: rfid.UHF18, RSSIMin: -40, RSSIMax: -70},
		"Config.Fault":    {Link: "x", Protocol: rfid.UHF18, Fault: "unplug"},
	} {
		assert.ErrorContains(t, c.Validate(), want)
	}
	d := ok.EnsureDefaults()
	assert.Equal(t, 1, d.Antennas)
	assert.Equal(t, -70, d.RSSIMin)
	assert.Equal(t, 10, d.FaultEvery)
}

// TestCloseWhileStreamingToAStalledDriver: a driver starts a continuous
// read and stops reading, so the simulator's writes block on a full port;
// Close still returns (it once waited for ever, holding a make test run
// until its timeout).
func TestCloseWhileStreamingToAStalledDriver(t *testing.T) {
	cfg := Config{Protocol: rfid.Mercury, Rate: 5000, Link: filepath.Join(t.TempDir(), "rfid0")}
	s, err := New(cfg)
	require.NoError(t, err)
	s.SetTags(population(t, 50, 0))
	f := openPort(t, s)
	start, err := rfid.AppendMercuryCommand(nil, rfid.MercuryOpMultiProtocol, []byte{0x00, 0x00, 0x01})
	require.NoError(t, err)
	_, err = f.Write(start)
	require.NoError(t, err)
	// nobody reads: the port's buffer fills and the stream's write blocks,
	// which shows as reads that stop counting up
	last := s.Stats().Reads
	require.Eventually(t, func() bool {
		now := s.Stats().Reads
		stalled := now > 0 && now == last
		last = now
		return stalled
	}, 10*time.Second, 300*time.Millisecond, "the stream stalls on a full port")
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked behind a stream stuck writing to a driver that stopped reading")
	}
}
