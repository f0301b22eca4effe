package protocol

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// goldenCases are the worked examples of SPEC.md: each name appears there as
// `<!-- golden:NAME -->` followed by a hex block. Raw bytes ↔ values in one
// table, checked in both directions.
var goldenCases = []struct {
	name string
	msg  Message
}{
	{"hello", &Hello{Header: Header{WH: "wh1", GW: "dock1"}, AgentVersion: "0.1.0", LastSeq: 42, AckedSeq: 40, DownSeq: 7, Epoch: "e1", HLC: MakeHLC(1764403200000, 0)}},
	{"ops", &OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 41, Last: 42, HLC: MakeHLC(1764403200000, 1), Ops: []Op{
		{Seq: 41, HLC: MakeHLC(1764403199000, 0), Kind: OpReceive, Location: "RCV", SKU: "04012345678901", Qty: 2, Device: "s1", Raw: []string{"4012345678901"}},
		{Seq: 42, HLC: MakeHLC(1764403200000, 0), Kind: OpCount, Scope: ScopeLocation, Location: "A-01", Lines: []CountLine{{SKU: "04012345678901", Qty: 5}}, Device: "s1"},
	}}},
	{"ops-deflate", &OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 41, Last: 42, HLC: MakeHLC(1764403200000, 1), Deflate: true, Ops: []Op{
		{Seq: 41, HLC: MakeHLC(1764403199000, 0), Kind: OpReceive, Location: "RCV", SKU: "04012345678901", Qty: 2, Device: "s1", Raw: []string{"4012345678901"}},
		{Seq: 42, HLC: MakeHLC(1764403200000, 0), Kind: OpCount, Scope: ScopeLocation, Location: "A-01", Lines: []CountLine{{SKU: "04012345678901", Qty: 5}}, Device: "s1"},
	}}},
	{"ops-status", &OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 43, Last: 44, HLC: MakeHLC(1764403201000, 0), Ops: []Op{
		{Seq: 43, HLC: MakeHLC(1764403200500, 0), Kind: OpReceive, Location: "RCV", SKU: "s1", Lot: "L1", Qty: 3, Owner: "acme", Status: StatusHold, Flags: FlagExpired, Expiry: "2025-11-01"},
		{Seq: 44, HLC: MakeHLC(1764403201000, 0), Kind: OpStatus, Location: "RCV", SKU: "s1", Lot: "L1", Qty: 3, Owner: "acme", Status: StatusHold, ToStatus: StatusExpired, Reason: "expired"},
	}}},
	{"hello-first-seq", &Hello{Header: Header{WH: "wh1", GW: "dock1"}, AgentVersion: "0.1.0", LastSeq: 500, AckedSeq: 500, DownSeq: 9, Epoch: "e1", HLC: MakeHLC(1764403200000, 0), FirstSeq: 401}},
	{"ack-regressed", &Ack{Header: Header{WH: "wh1", GW: "dock1"}, WM: 400, Epoch: "e2", HLC: MakeHLC(1764403200001, 0)}},
	{"ack", &Ack{Header: Header{WH: "wh1", GW: "dock1"}, WM: 42, Epoch: "e1", HLC: MakeHLC(1764403200001, 0)}},
	{"hello-probe", &Hello{Header: Header{WH: "wh1", GW: "dock1"}, AgentVersion: "0.1.0", LastSeq: 42, AckedSeq: 40, DownSeq: 7, Epoch: "e1", HLC: MakeHLC(1764403200000, 0), Probe: 7}},
	{"ack-answers", &Ack{Header: Header{WH: "wh1", GW: "dock1"}, WM: 40, Epoch: "e1", HLC: MakeHLC(1764403200001, 0), Features: FeatureOpsDeflate | FeatureProbes, Answers: 7}},
	{"ack-features", &Ack{Header: Header{WH: "wh1", GW: "dock1"}, WM: 42, Epoch: "e1", HLC: MakeHLC(1764403200001, 0), Features: FeatureOpsDeflate}},
	{"ack-error", &Ack{Header: Header{WH: "wh1", GW: "dock1"}, WM: 40, Epoch: "e1", HLC: MakeHLC(1764403200001, 0), Error: "gap: expected seq 41"}},
	{"down", &DownBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 8, Last: 9, Epoch: "e1", UpWM: 42, HLC: MakeHLC(1764403200002, 0), Items: []DownItem{
		{Seq: 9, Kind: DownStock, Body: mustHex("a30164412d3031026e3034303132333435363738393031040a")},
	}}},
	{"down-ack", &DownAck{Header: Header{WH: "wh1", GW: "dock1"}, DownWM: 9, Epoch: "e1"}},
	{"ops-sscc", &OpBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 43, Last: 43, HLC: MakeHLC(1764403201000, 0), Ops: []Op{
		{Seq: 43, HLC: MakeHLC(1764403201000, 0), Kind: OpReceive, Location: "RCV", SKU: "A", Lot: "L1", Qty: 4, Device: "s1",
			Raw: []string{"00106141412345678908"}, Refs: &Refs{PO: "P1", POLine: 1}, SSCC: "106141412345678908"},
	}}},
	{"down-asn", &DownBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 10, Last: 10, Epoch: "e1", UpWM: 43, HLC: MakeHLC(1764403200002, 0), Items: []DownItem{
		{Seq: 10, Kind: DownASN, Body: mustMarshal(ASN{SSCC: "106141412345678908", PO: "P1", Lines: []ASNLine{{SKU: "A", Lot: "L1", Expiry: "2027-01-31", Qty: 4}}})},
	}}},
	{"down-location-owner", &DownBatch{Header: Header{WH: "wh1", GW: "dock1"}, First: 11, Last: 11, Epoch: "e1", UpWM: 43, HLC: MakeHLC(1764403200002, 0), Items: []DownItem{
		{Seq: 11, Kind: DownLocation, Body: mustMarshal(Location{Code: "B-01", Type: LocStorage, Owner: "acme"})},
	}}},
	{"status-ship", &Status{Header: Header{WH: "wh1", GW: "pack1"}, Online: true, LastSeq: 42, AckedSeq: 42, At: 1764403200000,
		Notices: []Notice{{ID: "ship/O1/1764403200000", Kind: NoticeShip, Seq: 42, At: 1764403200000, Ref: "O1", Qty: 3, Device: "s1", SSCC: "106141412345678908"}}}},
	{"ack-ship", &Ack{Header: Header{WH: "wh1", GW: "pack1"}, WM: 42, Epoch: "e1", HLC: MakeHLC(1764403200001, 0), Features: FeatureOpsDeflate | FeatureProbes | FeatureShipNotices}},
	{"status", &Status{Header: Header{WH: "wh1", GW: "dock1"}, Online: true, OutboxDepth: 2, LastSeq: 42, AckedSeq: 40, AgentVersion: "0.1.0", At: 1764403200000, Devices: []DeviceStatus{{Name: "s1", Connected: true}}}},
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func mustMarshal(v any) []byte {
	b, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// specHex reads SPEC.md and returns the hex block after each golden marker.
func specHex(t testing.TB) map[string]string {
	f, err := os.Open("SPEC.md")
	require.NoError(t, err)
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	name, inBlock := "", false
	var buf strings.Builder
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "<!-- golden:"):
			name = strings.TrimSuffix(strings.TrimPrefix(line, "<!-- golden:"), " -->")
		case name != "" && line == "```hex":
			inBlock = true
			buf.Reset()
		case inBlock && line == "```":
			out[name] = buf.String()
			name, inBlock = "", false
		case inBlock:
			if i := strings.Index(line, "#"); i >= 0 { // comments annotate bytes
				line = line[:i]
			}
			buf.WriteString(strings.ReplaceAll(line, " ", ""))
		}
	}
	require.NoError(t, sc.Err())
	return out
}

func TestGoldenVectorsMatchSpec(t *testing.T) {
	spec := specHex(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			want, ok := spec[tc.name]
			require.True(t, ok, "SPEC.md has no golden:%s block", tc.name)
			got, err := Encode(tc.msg)
			require.NoError(t, err)
			require.Equal(t, want, hex.EncodeToString(got), "encoding differs from SPEC.md")
			back, err := Decode(mustHex(want))
			require.NoError(t, err)
			if b, ok := back.(*OpBatch); ok {
				// The golden ops are deterministic encodings: what was
				// received is each op's Marshal, byte for byte.
				for i := range b.Ops {
					enc, err := Marshal(&b.Ops[i])
					require.NoError(t, err)
					require.Equal(t, []byte(enc), []byte(b.Received[i]), "op %d", i)
				}
				requireReceived(t, std, b)
			}
			require.Equal(t, tc.msg, back)
		})
	}
	require.Len(t, spec, len(goldenCases), "SPEC.md has golden blocks the table does not check")
}

// TestOpsDeflateGoldenIsTheOpsExample: the ops-deflate example of SPEC.md
// inflates to exactly the bytes of the ops example, and both decode to the
// same ops — a receiver that expands it sees the batch a plain ops message
// carries. The compressed bytes are Go's compress/flate at DeflateLevel;
// they are not canonical (SPEC.md §5): should a Go release change that
// compressor's output, regenerate the vector — the decode direction is
// the contract.
func TestOpsDeflateGoldenIsTheOpsExample(t *testing.T) {
	spec := specHex(t)
	z, plain := mustHex(spec["ops-deflate"]), mustHex(spec["ops"])

	var env opsDeflate
	require.NoError(t, std.dec.Unmarshal(z, &env))
	require.Equal(t, Header{V: Version, T: TypeOpsDeflate, WH: "wh1", GW: "dock1"}, env.Header)
	inflated, err := std.inflate(env.Data)
	require.NoError(t, err)
	require.Equal(t, plain, inflated, "the data must inflate to the ops example byte for byte")

	mz, err := Decode(z)
	require.NoError(t, err)
	mp, err := Decode(plain)
	require.NoError(t, err)
	bz, bp := mz.(*OpBatch), mp.(*OpBatch)
	require.True(t, bz.Deflate)
	require.False(t, bp.Deflate)
	bz.Deflate = false
	require.Equal(t, bp, bz, "expanded batch differs from the plain one")

	again, err := Encode(mz.(*OpBatch))
	require.NoError(t, err)
	require.Equal(t, plain, again, "Deflate false re-encodes the plain form")
}

func TestStockValueBodyGolden(t *testing.T) {
	b, err := Marshal(StockValue{Location: "A-01", SKU: "04012345678901", OnHand: 10})
	require.NoError(t, err)
	require.Equal(t, "a30164412d3031026e3034303132333435363738393031040a", hex.EncodeToString(b))
	// An owner and a status other than available add keys 5 and 6.
	b, err = Marshal(StockValue{Location: "A-01", SKU: "s1", OnHand: 2, Owner: "acme", Status: StatusHold})
	require.NoError(t, err)
	require.Equal(t, "a50164412d3031026273310402056461636d650601", hex.EncodeToString(b))
}

// TestMaxMessageSizeIsTheSpecs: the one size limit of SPEC.md §2.1 is the
// constant every part of this implementation uses (codec, server default,
// embedded broker).
func TestMaxMessageSizeIsTheSpecs(t *testing.T) {
	b, err := os.ReadFile("SPEC.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(b), "<!-- limit:max-message-bytes -->")
	require.True(t, ok, "SPEC.md has no limit:max-message-bytes marker")
	var n int
	_, err = fmt.Sscanf(strings.TrimLeft(after, "\n"), "max-message-bytes = %d", &n)
	require.NoError(t, err, "the line after the marker must read `max-message-bytes = N`")
	require.Equal(t, MaxMessageSize, n)
	require.Equal(t, n, DefaultLimits.MaxMessageSize)
	require.Equal(t, n, DefaultLimits.MaxInflatedSize)

	_, err = Encode(&Status{Header: Header{WH: "w", GW: "g"}, AgentVersion: strings.Repeat("x", n)})
	require.ErrorIs(t, err, ErrTooLarge, "an encoder never produces a message over the limit")
	_, err = Decode(make([]byte, n+1))
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestOlderAgentReadsALocationWithAnOwner: the location record of the
// down-location-owner example decodes into the record of an agent of the
// version before location owners (no key 6): no error, every field it
// knows intact, the owner ignored.
func TestOlderAgentReadsALocationWithAnOwner(t *testing.T) {
	type oldLocation struct {
		Code     string `cbor:"1,keyasint"`
		Zone     string `cbor:"2,keyasint,omitempty"`
		Type     string `cbor:"3,keyasint,omitempty"`
		Sellable bool   `cbor:"4,keyasint,omitempty"`
		Rank     uint32 `cbor:"5,keyasint,omitempty"`
		Deleted  bool   `cbor:"15,keyasint,omitempty"`
	}
	var body []byte
	for _, tc := range goldenCases {
		if tc.name == "down-location-owner" {
			body = tc.msg.(*DownBatch).Items[0].Body
		}
	}
	require.NotEmpty(t, body)
	var old oldLocation
	require.NoError(t, Unmarshal(body, &old))
	require.Equal(t, oldLocation{Code: "B-01", Type: LocStorage}, old)
	var now Location
	require.NoError(t, Unmarshal(body, &now))
	require.Equal(t, "acme", now.Owner)
}
