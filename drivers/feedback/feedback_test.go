package feedback

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		kind string
		sig  Signal
		want []byte
	}{
		{KindNone, Good, nil},
		{KindHoneywell, Good, []byte{0x1b, '7'}},
		{KindHoneywell, Bad, []byte{0x1b, '8'}},
		{KindHoneywell, Warn, []byte{0x1b, '4', 0x1b, '6', 0x1b, '4'}},
		{KindDatalogic, Good, []byte{0x07}},
		{KindDatalogic, Bad, []byte{0x07, 0x07, 0x07}},
		{KindDatalogic, Warn, []byte{0x07, 0x07}},
		// BEEP 0x00: 05+E6+04+00+00 = 0xEF, checksum 0x10000-0xEF = 0xFF11.
		{KindSSI, Good, []byte{0x05, 0xE6, 0x04, 0x00, 0x00, 0xFF, 0x11}},
		// BEEP 0x07: 05+E6+04+00+07 = 0xF6, checksum 0xFF0A.
		{KindSSI, Bad, []byte{0x05, 0xE6, 0x04, 0x00, 0x07, 0xFF, 0x0A}},
		// BEEP 0x18: 05+E6+04+00+18 = 0x107, checksum 0xFEF9.
		{KindSSI, Warn, []byte{0x05, 0xE6, 0x04, 0x00, 0x18, 0xFE, 0xF9}},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.sig.String(), func(t *testing.T) {
			e := For(tt.kind)
			assert.Equal(t, tt.kind, e.Kind())
			got, err := e.Encode(tt.sig)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, kind := range []string{KindSSI, KindHoneywell, KindDatalogic} {
		for _, sig := range []Signal{Good, Bad, Warn} {
			b, err := For(kind).Encode(sig)
			require.NoError(t, err)
			d, err := NewDecoder(kind)
			require.NoError(t, err)
			assert.Equal(t, []Signal{sig}, d.Feed(b), "%s %s", kind, sig)
		}
	}
}

func TestDecoderSplitsAndCommas(t *testing.T) {
	d, err := NewDecoder(KindHoneywell)
	require.NoError(t, err)
	assert.Empty(t, d.Feed([]byte{0x1b}))
	assert.Equal(t, []Signal{Good}, d.Feed([]byte("7,")))
	assert.Equal(t, []Signal{Bad, Bad}, d.Feed([]byte("\x1b8,\x1b8,")))

	s, err := NewDecoder(KindSSI)
	require.NoError(t, err)
	b, _ := For(KindSSI).Encode(Warn)
	assert.Empty(t, s.Feed(b[:3]))
	assert.Equal(t, []Signal{Warn}, s.Feed(b[3:]))
}

func TestUnknownKind(t *testing.T) {
	_, err := Lookup("zebra-hid")
	require.ErrorIs(t, err, ErrUnknownKind)
	assert.ErrorContains(t, err, "datalogic, honeywell, none, ssi")
	_, err = For("zebra-hid").Encode(Good)
	require.ErrorIs(t, err, ErrUnknownKind)
	_, err = NewDecoder("zebra-hid")
	require.ErrorIs(t, err, ErrUnknownKind)
	e, err := Lookup("")
	require.NoError(t, err)
	assert.Equal(t, KindNone, e.Kind())
}

func TestInvalidSignal(t *testing.T) {
	for _, kind := range Kinds() {
		_, err := For(kind).Encode(Signal(0))
		require.ErrorIs(t, err, ErrSignal, kind)
	}
}

func TestParseSignal(t *testing.T) {
	for _, sig := range []Signal{Good, Bad, Warn} {
		got, err := ParseSignal(sig.String())
		require.NoError(t, err)
		assert.Equal(t, sig, got)
	}
	_, err := ParseSignal("loud")
	require.Error(t, err)
	assert.Equal(t, "signal(9)", Signal(9).String())
}

func FuzzDecoder(f *testing.F) {
	f.Add("ssi", []byte{0x05, 0xE6, 0x04, 0x00, 0x00, 0xFF, 0x11})
	f.Add("honeywell", []byte("\x1b7\x1b8,\x1b"))
	f.Add("datalogic", []byte("\a\a\a"))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		d, err := NewDecoder(kind)
		if err != nil {
			return
		}
		for _, sig := range d.Feed(data) {
			if sig < Good || sig > Warn {
				t.Fatalf("invalid signal %d", sig)
			}
		}
	})
}
