package main

import (
	"bytes"
	"io"
	"testing"

	"github.com/shelfsync/shelfsync/firmware-sim/barcodesim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	var b bytes.Buffer
	require.ErrorContains(t, run(nil, &b), "missing subcommand")
	require.ErrorContains(t, run([]string{"scale"}, &b), `unknown subcommand "scale"`)
	b.Reset()
	require.NoError(t, run([]string{"--help"}, &b))
	for _, want := range []string{"barcode", "rfid", "Subcommands"} {
		assert.Contains(t, b.String(), want)
	}
	require.NoError(t, run([]string{"barcode", "-h"}, io.Discard))
	require.ErrorContains(t, run([]string{"barcode", "--framing", "hid"}, io.Discard), "barcode: barcodesim: framing")
}

func TestParseBarcode(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    func(*testing.T, barcodeOpts)
		wantErr string
	}{
		{"defaults", nil, func(t *testing.T, o barcodeOpts) {
			assert.Equal(t, barcodesim.FramingLine, o.cfg.Framing)
			assert.Equal(t, "CRLF", o.cfg.Suffix)
			assert.Equal(t, uint64(1), o.cfg.Seed)
			assert.Equal(t, "/tmp/shelfsync-barcode0", o.cfg.Link)
		}, ""},
		{"ssi with faults", []string{"--framing", "ssi", "--fault", "badsum", "--fault-every", "3", "--seed", "9", "--aim", "]E0"},
			func(t *testing.T, o barcodeOpts) {
				assert.Equal(t, barcodesim.FaultBadSum, o.cfg.Fault)
				assert.Equal(t, 3, o.cfg.FaultEvery)
				assert.Equal(t, uint64(9), o.cfg.Seed)
				assert.Equal(t, "]E0", o.cfg.AIM)
			}, ""},
		{"random", []string{"--random", "5", "--catalog", "c.csv", "--rate", "10"}, func(t *testing.T, o barcodeOpts) {
			assert.Equal(t, 5, o.random)
			assert.InDelta(t, 10.0, o.rate, 0)
		}, ""},
		{"random without catalog", []string{"--random", "5"}, nil, "--catalog"},
		{"script and random", []string{"--random", "5", "--catalog", "c", "--script", "s"}, nil, "not both"},
		{"badsum in line mode", []string{"--fault", "badsum"}, nil, "badsum"},
		{"bad suffix", []string{"--suffix", "SEMI"}, nil, "suffix"},
		{"stray argument", []string{"extra"}, nil, "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseBarcode(tt.args, io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.want(t, o)
		})
	}
}
