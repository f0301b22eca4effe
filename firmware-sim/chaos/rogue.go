package chaos

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfsync/shelfsync/protocol"
)

// rogueClock is the clock-jump fault's gateway: a valid client of a
// warehouse whose clock jumped far ahead says hello and sends one op
// stamped then. The server must refuse both (protocol SPEC.md §4), so the
// other gateways' clocks, which follow the server's acks, stay true; the
// check then finds every agent's skew within the maximum offset and no
// stock from the rogue.
func rogueClock(ctx context.Context, brokerAddr, wh string, n int64, ahead time.Duration) error {
	gw := fmt.Sprintf("rogue-%d", n)
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + brokerAddr).SetClientID("chaos-" + gw).
		SetCleanSession(true).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	at := protocol.MakeHLC(time.Now().Add(ahead).UnixMilli(), 0)
	hdr := protocol.Header{WH: wh, GW: gw}
	topic := protocol.NewTopics("").Up(wh, gw)
	for _, m := range []protocol.Message{
		&protocol.Hello{Header: hdr, LastSeq: 1, HLC: at},
		&protocol.OpBatch{Header: hdr, First: 1, Last: 1, HLC: at,
			Ops: []protocol.Op{{Seq: 1, HLC: at, Kind: protocol.OpReceive, Location: "ROGUE", SKU: "ROGUE", Qty: 1}}},
	} {
		b, err := protocol.Encode(m)
		if err != nil {
			return err
		}
		tok := c.Publish(topic, 1, false, b)
		if !tok.WaitTimeout(10 * time.Second) {
			return errors.New("publish timed out")
		}
		if tok.Error() != nil {
			return tok.Error()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
