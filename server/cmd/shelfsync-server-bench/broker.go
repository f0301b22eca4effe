package main

// The broker figures (-only broker runs just these):
//
//	broker_qos1_msgs_per_s_20pub  20 publishers → 1 wildcard subscriber, QoS 1,
//	                              100-byte messages, through the embedded
//	                              broker, vs Mosquitto in the same run
//	broker_lost_msgs              messages PUBACKed by the embedded broker that
//	                              the subscriber never received (want 0), vs
//	                              Mosquitto's

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelfsync/shelfsync/server/internal/broker"
	"github.com/shelfsync/shelfsync/testbed"
)

const (
	fanInPublishers = 20
	fanInPerPub     = 2500 // 50,000 messages in all
	fanInBytes      = 100
)

type fanInResult struct {
	msgsPerS float64
	lost     int
}

func benchBroker(ctx context.Context) ([]Result, error) {
	dir, err := os.MkdirTemp("", "shelfsync-bench-broker-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		return nil, err
	}
	nats, err := fanIn("tcp://" + b.Addr())
	b.Close()
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	logf("broker: embedded: %.0f msg/s, %d lost", nats.msgsPerS, nats.lost)

	var mosq fanInResult
	bin, err := testbed.MosquittoBin()
	if err != nil {
		return nil, err
	}
	m, err := testbed.StartMosquitto(ctx, bin, dir, "")
	if err != nil {
		return nil, err
	}
	mosq, err = fanIn("tcp://" + m.Addr)
	m.Proc.Stop(15)
	if err != nil {
		return nil, fmt.Errorf("mosquitto: %w", err)
	}
	logf("broker: mosquitto: %.0f msg/s, %d lost", mosq.msgsPerS, mosq.lost)
	return []Result{
		result("broker_qos1_msgs_per_s_20pub", nats.msgsPerS, "msg/s", "mosquitto_qos1_msgs_per_s_20pub", mosq.msgsPerS),
		{Name: "broker_lost_msgs", Value: float64(nats.lost), Unit: "msgs", Baseline: "mosquitto_lost_msgs", BaselineValue: float64(mosq.lost)},
	}, nil
}

// fanIn has fanInPublishers clients publish fanInPerPub QoS 1 messages
// each, as fast as the broker acknowledges them, to one subscriber on a
// wildcard. It returns the rate at which the subscriber received them
// (first publish to last distinct message) and how many messages the
// broker acknowledged that never arrived.
func fanIn(url string) (fanInResult, error) {
	total := fanInPublishers * fanInPerPub
	seen := make([]atomic.Bool, total)
	var distinct, lastAt atomic.Int64
	all := make(chan struct{})
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("bench-fanin-sub").SetCleanSession(true).
		SetOrderMatters(false).SetAutoReconnect(false))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fanInResult{}, fmt.Errorf("subscriber connect: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	tok := sub.Subscribe("bench/+/up", 1, func(_ paho.Client, m paho.Message) {
		p := m.Payload()
		if len(p) < 8 {
			return
		}
		i := binary.BigEndian.Uint64(p)
		if i < uint64(total) && !seen[i].Swap(true) {
			lastAt.Store(time.Now().UnixNano())
			if distinct.Add(1) == int64(total) {
				close(all)
			}
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fanInResult{}, fmt.Errorf("subscribe: %v", tok.Error())
	}
	pubs := make([]paho.Client, fanInPublishers)
	for p := range pubs {
		pubs[p] = paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprintf("bench-fanin-pub-%d", p)).
			SetCleanSession(true).SetAutoReconnect(false))
		if tok := pubs[p].Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fanInResult{}, fmt.Errorf("publisher connect: %v", tok.Error())
		}
		defer pubs[p].Disconnect(100)
	}
	acked := make([]atomic.Bool, total)
	var wg sync.WaitGroup
	start := time.Now()
	for p, c := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks := make([]paho.Token, 0, fanInPerPub)
			for k := 0; k < fanInPerPub; k++ {
				msg := make([]byte, fanInBytes)
				binary.BigEndian.PutUint64(msg, uint64(p*fanInPerPub+k))
				toks = append(toks, c.Publish(fmt.Sprintf("bench/p%d/up", p), 1, false, msg))
			}
			for k, t := range toks {
				if t.WaitTimeout(60*time.Second) && t.Error() == nil {
					acked[p*fanInPerPub+k].Store(true)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(30 * time.Second): // what has not arrived by now is lost
	}
	lost := 0
	for i := range acked {
		if acked[i].Load() && !seen[i].Load() {
			lost++
		}
	}
	got := distinct.Load()
	if got == 0 {
		return fanInResult{lost: lost}, nil
	}
	elapsed := time.Unix(0, lastAt.Load()).Sub(start)
	return fanInResult{msgsPerS: float64(got) / elapsed.Seconds(), lost: lost}, nil
}
