package rfid

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// Golden frames, raw bytes ↔ decoded. Sources as in TestCRC; the
// inventory responses are built per the UHFReader18 manual's layout.
var uhf18Golden = []struct {
	name    string
	raw     string
	command bool
	frame   UHF18Frame
}{
	{"inventory command (manual)", "04 00 01 DB 4B", true, UHF18Frame{Adr: 0x00, Cmd: 0x01, Data: []byte{}}},
	{"reader info broadcast (manual)", "04 FF 21 19 95", true, UHF18Frame{Adr: 0xFF, Cmd: 0x21, Data: []byte{}}},
	{"no tag", "05 00 01 FB F2 3D", false, UHF18Frame{Adr: 0, Cmd: 1, Status: 0xFB, Data: []byte{}}},
	{"one tag", "13 00 01 01 01 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85 " + crcHex("13 00 01 01 01 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85"), false,
		UHF18Frame{Adr: 0, Cmd: 1, Status: 1, Data: unhex("01 0C 30 74 25 7B F7 19 4E 40 00 00 1A 85")}},
}

func crcHex(s string) string {
	crc := crcUHF18(unhex(s))
	return hex.EncodeToString([]byte{byte(crc), byte(crc >> 8)})
}

func TestUHF18Golden(t *testing.T) {
	for _, g := range uhf18Golden {
		t.Run(g.name, func(t *testing.T) {
			raw := unhex(g.raw)
			var got UHF18Frame
			var err error
			var enc []byte
			if g.command {
				got, err = ParseUHF18Command(raw)
				require.NoError(t, err)
				enc, err = AppendUHF18Command(nil, g.frame.Adr, g.frame.Cmd, g.frame.Data)
			} else {
				got, err = ParseUHF18Response(raw)
				require.NoError(t, err)
				enc, err = AppendUHF18Response(nil, g.frame.Adr, g.frame.Cmd, g.frame.Status, g.frame.Data)
			}
			require.NoError(t, err)
			assert.Equal(t, g.frame, got)
			assert.Equal(t, raw, enc)
		})
	}
	_, err := ParseUHF18Response(unhex("05 00 01 FB F2 3E"))
	assert.ErrorContains(t, err, "CRC mismatch")
	_, err = ParseUHF18Response(unhex("06 00 01 FB F2 3D"))
	assert.ErrorContains(t, err, "length byte 6 does not match frame of 6 bytes")
	assert.ErrorIs(t, err, ErrFrame)
}

func TestUHF18Inventory(t *testing.T) {
	var epcs [][]byte
	for i := range 40 {
		epcs = append(epcs, bytes.Repeat([]byte{byte(i)}, 12))
	}
	stream, err := AppendUHF18Inventory(nil, 0, epcs, UHF18StatusDone)
	require.NoError(t, err)
	var dec UHF18Decoder
	_, _ = dec.Write(stream)
	var got [][]byte
	var statuses []byte
	for f, ok := dec.Next(); ok; f, ok = dec.Next() {
		fr, err := ParseUHF18Response(f)
		require.NoError(t, err)
		statuses = append(statuses, fr.Status)
		_, err = ForEachUHF18Tag(fr.Data, func(epc []byte) { got = append(got, bytes.Clone(epc)) })
		require.NoError(t, err)
	}
	assert.Equal(t, epcs, got)
	assert.Equal(t, []byte{3, 3, 1}, statuses, "19 tags of 12 bytes fit a 256-byte frame")

	empty, err := AppendUHF18Inventory(nil, 0, nil, UHF18StatusDone)
	require.NoError(t, err)
	assert.Equal(t, unhex("05 00 01 FB F2 3D"), empty)

	for _, bad := range []string{"", "02 0C 01", "01 00", "01 02 AA BB CC"} {
		_, err := ForEachUHF18Tag(unhex(bad), func([]byte) {})
		assert.ErrorIs(t, err, ErrFrame, bad)
	}
}

var mercuryGolden = []struct {
	name       string
	raw        []byte
	fromReader bool
	frame      MercuryFrame
}{
	{"get version", unhex("FF 00 03 1D 0C"), false, MercuryFrame{Op: 0x03, Data: []byte{}}},
	{"set antenna", unhex("FF 03 91 02 01 01 42 C5"), false, MercuryFrame{Op: 0x91, Data: unhex("02 01 01")}},
	{"set antenna reply", unhex("FF 00 91 00 00 17 58"), true, MercuryFrame{Op: 0x91, Data: []byte{}}},
	{"read multiple reply", unhex("FF 07 22 00 00 00 00 13 00 00 00 01 8B 58"), true,
		MercuryFrame{Op: 0x22, Data: unhex("00 00 13 00 00 00 01")}},
	{"start continuous", unhex("FF 10 2F 00 00 01 22 00 00 05 07 22 10 00 1B 03 E8 00 00 DC D4"), false,
		MercuryFrame{Op: 0x2F, Data: unhex("00 00 01 22 00 00 05 07 22 10 00 1B 03 E8 00 00")}},
	{"tag record (SparkFun capture)", sparkfunTagRecord, true, MercuryFrame{Op: 0x22, Data: sparkfunTagRecord[5:45]}},
}

func TestMercuryGolden(t *testing.T) {
	for _, g := range mercuryGolden {
		t.Run(g.name, func(t *testing.T) {
			got, err := ParseMercury(g.raw, g.fromReader)
			require.NoError(t, err)
			assert.Equal(t, g.frame, got)
			var enc []byte
			if g.fromReader {
				enc, err = AppendMercuryResponse(nil, g.frame.Op, g.frame.Status, g.frame.Data)
			} else {
				enc, err = AppendMercuryCommand(nil, g.frame.Op, g.frame.Data)
			}
			require.NoError(t, err)
			assert.Equal(t, g.raw, enc)
		})
	}
	_, err := ParseMercury(unhex("FF 00 03 1D 0D"), false)
	assert.ErrorContains(t, err, "CRC 1D0D does not match")
	_, err = ParseMercury(unhex("FE 00 03 1D 0C"), false)
	assert.ErrorIs(t, err, ErrFrame)
}

func TestMercuryTagRecord(t *testing.T) {
	tag, err := ParseMercuryTag(sparkfunTagRecord[5:45])
	require.NoError(t, err)
	assert.Equal(t, -60, tag.RSSI)
	assert.Equal(t, 1, tag.TxAntenna)
	assert.Equal(t, 1, tag.RxAntenna)
	assert.Equal(t, 923200, tag.FrequencyKHz)
	assert.Equal(t, uint32(0x127), tag.TimestampMs)
	assert.Equal(t, byte(MercuryProtocolGen2), tag.Protocol)
	assert.Equal(t, uint16(0x3000), tag.PC)
	assert.Equal(t, unhex("000000000000000000001545"), tag.EPC)
	assert.Equal(t, uint16(0xE94A), tag.TagCRC)
	assert.Empty(t, tag.Embedded)

	// The encoder reproduces the capture byte for byte.
	data := AppendMercuryTag(nil, MercuryTag{RSSI: -60, TxAntenna: 1, RxAntenna: 1, FrequencyKHz: 923200,
		TimestampMs: 0x127, PC: 0x3000, EPC: tag.EPC})
	frame, err := AppendMercuryResponse(nil, MercuryOpReadMultiple, 0, data)
	require.NoError(t, err)
	assert.Equal(t, sparkfunTagRecord, frame)

	// Embedded data and a 128-bit EPC round-trip.
	in := MercuryTag{RSSI: -71, TxAntenna: 2, RxAntenna: 2, FrequencyKHz: 866900, Embedded: []byte{1, 2, 3},
		EPC: bytes.Repeat([]byte{0xAB}, 16), Protocol: MercuryProtocolGen2}
	out, err := ParseMercuryTag(AppendMercuryTag(nil, in))
	require.NoError(t, err)
	assert.Equal(t, in.EPC, out.EPC)
	assert.Equal(t, in.Embedded, out.Embedded)
	assert.Equal(t, uint16(0x4000), out.PC)
	assert.Equal(t, -71, out.RSSI)

	bad := bytes.Clone(sparkfunTagRecord[5:45])
	bad[len(bad)-1] ^= 1
	_, err = ParseMercuryTag(bad)
	assert.ErrorContains(t, err, "tag CRC E94B, computed E94A")
	_, err = ParseMercuryTag(bad[:20])
	assert.ErrorIs(t, err, ErrFrame)
	bad = bytes.Clone(sparkfunTagRecord[5:45])
	bad[23] = 0x90 // EPC length 144 bits: longer than the record
	_, err = ParseMercuryTag(bad)
	assert.ErrorContains(t, err, "EPC length 144 bits")
}

// crcMercuryBitwise is the bit-at-a-time definition the table implements.
func crcMercuryBitwise(p []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, b := range p {
		for i := 7; i >= 0; i-- {
			top := crc & 0x8000
			crc = crc<<1 | uint16(b>>i&1)
			if top != 0 {
				crc ^= 0x1021
			}
		}
	}
	return crc
}

// Published frames: "04 00 01 DB 4B" (inventory) and "04 FF 21 19 95"
// (reader information, broadcast) from the UHFReader18 user's manual V2.0;
// "FF 00 03 1D 0C" (get version) from the Mercury serial protocol; the
// other Mercury frames are host commands and replies from public M6e
// driver sources and SparkFun's Simultaneous RFID library capture.
func TestCRC(t *testing.T) {
	uhf18 := [][]byte{
		{0x04, 0x00, 0x01, 0xDB, 0x4B},
		{0x04, 0xFF, 0x21, 0x19, 0x95},
	}
	for _, f := range uhf18 {
		assert.Zero(t, crcUHF18(f), "% X", f)
		crc := crcUHF18(f[:len(f)-2])
		assert.Equal(t, f[len(f)-2:], []byte{byte(crc), byte(crc >> 8)})
	}
	mercury := [][]byte{
		{0xFF, 0x00, 0x03, 0x1D, 0x0C},                                                       // get version
		{0xFF, 0x03, 0x91, 0x02, 0x01, 0x01, 0x42, 0xC5},                                     // set antenna 1/1
		{0xFF, 0x00, 0x91, 0x00, 0x00, 0x17, 0x58},                                           // its reply
		{0xFF, 0x00, 0x2A, 0x1D, 0x25},                                                       // clear tag buffer
		{0xFF, 0x00, 0x2A, 0x00, 0x00, 0x01, 0xE8},                                           // its reply
		{0xFF, 0x05, 0x22, 0x00, 0x00, 0x13, 0x01, 0xF4, 0x2B, 0x19},                         // read multiple, 500 ms
		{0xFF, 0x07, 0x22, 0x00, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x01, 0x8B, 0x58}, // 1 tag found
		{0xFF, 0x02, 0x92, 0x0B, 0xB8, 0x4A, 0xE1},                                           // set read power 30.00 dBm
		{0xFF, 0x10, 0x2F, 0x00, 0x00, 0x01, 0x22, 0x00, 0x00, 0x05, 0x07, 0x22, 0x10, 0x00, 0x1B, 0x03, 0xE8, 0x00, 0x00, 0xDC, 0xD4},
		sparkfunTagRecord,
	}
	for _, f := range mercury {
		body := f[1 : len(f)-2]
		want := uint16(f[len(f)-2])<<8 | uint16(f[len(f)-1])
		assert.Equal(t, want, crcMercury(body), "% X", f)
		assert.Equal(t, want, crcMercuryBitwise(body), "% X", f)
	}
	assert.Equal(t, uint16(0x1D0C), crcMercury([]byte{0x00, 0x03}))
}

// sparkfunTagRecord is the continuous-read tag record printed in the
// comments of SparkFun's Simultaneous RFID Tag Reader library
// (parseResponse), captured from a ThingMagic M6E Nano.
var sparkfunTagRecord = []byte{
	0xFF, 0x28, 0x22, 0x00, 0x00, 0x10, 0x00, 0x1B, 0x01, 0xFF, 0x01, 0x01, 0xC4, 0x11, 0x0E, 0x16,
	0x40, 0x00, 0x00, 0x01, 0x27, 0x00, 0x00, 0x05, 0x00, 0x00, 0x0F, 0x00, 0x80, 0x30, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x15, 0x45, 0xE9, 0x4A, 0x56, 0x1D,
}
