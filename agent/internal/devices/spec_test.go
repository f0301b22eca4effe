package devices

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/shelfsync/shelfsync/drivers/rfid"
)

func TestParseRFIDSpec(t *testing.T) {
	sp, err := ParseSpec("gate=rfid:/dev/ttyUSB0,protocol=mercury,role=shelf,location=A-01,sweep=3s,window=250ms,baud=115200")
	require.NoError(t, err)
	c, err := sp.RFIDConfig()
	require.NoError(t, err)
	require.Equal(t, rfid.Mercury, c.Reader.Protocol)
	require.Equal(t, RoleShelf, c.Role)
	require.Equal(t, "A-01", c.Location)
	require.Equal(t, 3*time.Second, c.Sweep)
	require.Equal(t, 250*time.Millisecond, c.Window)
	require.Equal(t, 115200, c.Baud)

	for _, bad := range []struct{ spec, want string }{
		{"g=rfid:/dev/x,role=portal,location=D", "protocol="},
		{"g=rfid:/dev/x,protocol=uhf18,location=D", "role="},
		{"g=rfid:/dev/x,protocol=uhf18,role=portal", "location="},
		{"g=rfid:/dev/x,protocol=uhf18,role=shelf,location=A,sweep=1s,window=900ms", "twice"},
		{"g=rfid:/dev/x,protocol=uhf18,role=shelf,location=A,framing=ssi", "unknown option"},
		{"g=barcode:/dev/x,role=shelf", "unknown option"},
		{"g=nfc:/dev/x", "barcode or rfid"},
	} {
		_, err := ParseSpec(bad.spec)
		require.ErrorContains(t, err, bad.want, bad.spec)
	}
}
