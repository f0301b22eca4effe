package rfid

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pipePort is one end of a pair of OS pipes: buffered like a serial port
// and with read deadlines.
type pipePort struct {
	r *os.File
	w *os.File
}

func (p pipePort) Read(b []byte) (int, error)        { return p.r.Read(b) }
func (p pipePort) Write(b []byte) (int, error)       { return p.w.Write(b) }
func (p pipePort) SetReadDeadline(t time.Time) error { return p.r.SetReadDeadline(t) }
func (p pipePort) Close() error                      { return errors.Join(p.r.Close(), p.w.Close()) }

func portPair(t *testing.T) (host, device pipePort) {
	hr, dw, err := os.Pipe()
	require.NoError(t, err)
	dr, hw, err := os.Pipe()
	require.NoError(t, err)
	host, device = pipePort{hr, hw}, pipePort{dr, dw}
	t.Cleanup(func() { _ = host.Close(); _ = device.Close() })
	return host, device
}

// fakeDevice answers commands with reply until the port closes.
func fakeDevice(t *testing.T, port pipePort, dec interface {
	Write([]byte) (int, error)
	Next() ([]byte, bool)
}, reply func(cmd []byte) []byte) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 512)
		for {
			n, err := port.Read(buf)
			if err != nil {
				return
			}
			_, _ = dec.Write(buf[:n])
			for f, ok := dec.Next(); ok; f, ok = dec.Next() {
				if out := reply(f); len(out) > 0 {
					if _, err := port.Write(out); err != nil {
						return
					}
				}
			}
		}
	}()
	return &wg
}

// collectUntil runs r until want distinct EPCs were read or the deadline.
func collectUntil(t *testing.T, r *Reader, want int) (map[string]TagRead, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := map[string]TagRead{}
	err := r.Run(ctx, func(tr TagRead) {
		tr.EPC = bytes.Clone(tr.EPC)
		seen[string(tr.EPC)] = tr
		if len(seen) >= want {
			cancel()
		}
	})
	return seen, err
}

var testEPCs = [][]byte{unhex("3074257BF7194E4000001A85"), unhex("3074257BF7194E4000001A86"), unhex("E2801160600002")}

func TestReaderUHF18(t *testing.T) {
	host, device := portPair(t)
	polls := 0
	wg := fakeDevice(t, device, &UHF18Decoder{MinLen: 4}, func(cmd []byte) []byte {
		c, err := ParseUHF18Command(cmd)
		if err != nil || c.Cmd != UHF18CmdInventory {
			return nil
		}
		polls++
		// Garbage and a corrupted copy before every real response.
		out := []byte{0x00, 0xFF, 0x13}
		bad, _ := AppendUHF18Inventory(nil, c.Adr, testEPCs[:1], UHF18StatusDone)
		bad[5] ^= 0x01
		out = append(out, bad...)
		if polls == 1 {
			return append(out, 0x05, 0x00, 0x01, 0xFB, 0xF2, 0x3D) // first poll: no tag
		}
		out, _ = AppendUHF18Inventory(out, c.Adr, testEPCs, UHF18StatusDone)
		return out
	})
	r, err := New(host, Config{Protocol: UHF18, Interval: 10 * time.Millisecond, Antenna: 2})
	require.NoError(t, err)
	seen, err := collectUntil(t, r, len(testEPCs))
	assert.ErrorIs(t, err, context.Canceled)
	require.Len(t, seen, len(testEPCs))
	for _, e := range testEPCs {
		assert.Equal(t, 2, seen[string(e)].Antenna)
		assert.Equal(t, 1, seen[string(e)].Count)
	}
	st := r.Stats()
	assert.GreaterOrEqual(t, st.Reads, int64(3))
	assert.Positive(t, st.Garbage)
	_ = host.Close()
	wg.Wait()
}

func TestReaderMercury(t *testing.T) {
	host, device := portPair(t)
	var ops []byte
	wg := fakeDevice(t, device, &MercuryDecoder{}, func(cmd []byte) []byte {
		c, err := ParseMercury(cmd, false)
		if err != nil {
			return nil
		}
		ops = append(ops, c.Op)
		out := []byte{0x13, 0x37} // line noise
		if c.Op == MercuryOpVersion {
			out, _ = AppendMercuryResponse(out, c.Op, 0, make([]byte, 20))
			return out
		}
		out, _ = AppendMercuryResponse(out, c.Op, 0, nil)
		if c.Op == MercuryOpMultiProtocol && bytes.Equal(c.Data, MercuryStartContinuous) {
			out, _ = AppendMercuryResponse(out, MercuryOpReadMultiple, MercuryStatusNoTags, nil) // keep-alive
			for i, e := range testEPCs {
				rec := AppendMercuryTag(nil, MercuryTag{RSSI: -40 - i, TxAntenna: 3, RxAntenna: 3, FrequencyKHz: 866300, EPC: e})
				good, _ := AppendMercuryResponse(nil, MercuryOpReadMultiple, 0, rec)
				bad := bytes.Clone(good)
				bad[len(bad)-1] ^= 0xFF
				out = append(append(out, bad...), good...)
			}
		}
		return out
	})
	r, err := New(host, Config{Protocol: Mercury, Timeout: time.Second})
	require.NoError(t, err)
	seen, err := collectUntil(t, r, len(testEPCs))
	assert.ErrorIs(t, err, context.Canceled)
	require.Len(t, seen, len(testEPCs))
	assert.Equal(t, 3, seen[string(testEPCs[0])].Antenna)
	assert.Equal(t, -40, seen[string(testEPCs[0])].RSSI)
	assert.Equal(t, -42, seen[string(testEPCs[2])].RSSI)
	assert.Positive(t, r.Stats().Garbage)
	_ = host.Close() // the device reads what is left, then EOF
	wg.Wait()
	// stop, version, protocol, start … stop on return.
	require.GreaterOrEqual(t, len(ops), 5)
	assert.Equal(t, []byte{0x2F, 0x03, 0x93, 0x2F}, ops[:4])
	assert.Equal(t, byte(0x2F), ops[len(ops)-1])
}

func TestReaderMercuryNoAnswer(t *testing.T) {
	host, _ := portPair(t)
	r, err := New(host, Config{Protocol: Mercury, Timeout: 50 * time.Millisecond})
	require.NoError(t, err)
	err = r.Run(context.Background(), func(TagRead) {})
	assert.ErrorContains(t, err, "no reply to opcode 03 within 50ms")
}

func TestReaderPortClosed(t *testing.T) {
	host, device := portPair(t)
	_ = device.w.Close() // the reader's receive side sees EOF
	r, err := New(host, Config{Protocol: UHF18})
	require.NoError(t, err)
	err = r.Run(context.Background(), func(TagRead) {})
	assert.ErrorContains(t, err, "rfid uhf18: read: EOF")
}

func TestConfigValidate(t *testing.T) {
	_, err := New(nil, Config{Protocol: "llrp"})
	assert.ErrorContains(t, err, `Config.Protocol "llrp"`)
	_, err = New(nil, Config{Protocol: UHF18, Interval: -1})
	assert.Error(t, err)
	_, err = New(nil, Config{Protocol: UHF18, Antenna: -1})
	assert.Error(t, err)
}
