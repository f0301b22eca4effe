package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultRoot is the topic root used when none is configured.
const DefaultRoot = "shelfsync/v1"

// ServerOrigin is the gateway field of operations issued by the server
// (conflict resolutions, recount tasks). It cannot collide with a gateway ID
// because '@' is not allowed in IDs.
const ServerOrigin = "@server"

// MaxIDLen is the longest warehouse or gateway ID.
const MaxIDLen = 64

// MaxFieldLen is the longest sku, location or lot in bytes.
const MaxFieldLen = 64

// ErrBadID reports a warehouse, gateway or channel ID outside the allowed
// form: 1–64 characters of [A-Za-z0-9._-].
var ErrBadID = errors.New("bad id")

// ValidateID reports whether id is a valid warehouse, gateway or channel ID.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1-%d characters", ErrBadID, id, MaxIDLen)
	}
	if strings.Trim(id, ".") == "" {
		return fmt.Errorf("%w: %q is only dots (a path element, not a name)", ErrBadID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: %q has %q at position %d; allowed are A-Z a-z 0-9 . _ -", ErrBadID, id, c, i)
		}
	}
	return nil
}

// ClientID is the MQTT client id of the agent of gateway wh/gw:
// "shelfsync-agent-{wh}-{gw}", with each '.' of the IDs written ':' (NATS
// refuses '.' in a client id). The embedded broker admits a gateway only
// under its own client id, so no gateway can take over another's session.
func ClientID(wh, gw string) string {
	return "shelfsync-agent-" + strings.ReplaceAll(wh+"-"+gw, ".", ":")
}

// TopicKind names the role of a topic.
type TopicKind string

// Topic kinds.
const (
	TopicUp           TopicKind = "up"
	TopicDown         TopicKind = "down"
	TopicStatus       TopicKind = "status"
	TopicAlerts       TopicKind = "alerts"
	TopicAvailability TopicKind = "availability"
)

// Topic is a parsed shelfsync topic.
type Topic struct {
	Kind      TopicKind
	Warehouse string
	Gateway   string // for up, down, status
	Channel   string // for availability
}

// Topics builds and parses topic names under one root.
type Topics struct{ Root string }

// NewTopics returns a builder for root (DefaultRoot when empty).
func NewTopics(root string) Topics {
	if root == "" {
		root = DefaultRoot
	}
	return Topics{Root: strings.TrimSuffix(root, "/")}
}

// Gateway returns the topic of kind (up, down or status) for wh/gw.
func (t Topics) Gateway(kind TopicKind, wh, gw string) string {
	return t.Root + "/" + wh + "/" + gw + "/" + string(kind)
}

// Up returns {root}/{wh}/{gw}/up.
func (t Topics) Up(wh, gw string) string { return t.Gateway(TopicUp, wh, gw) }

// Down returns {root}/{wh}/{gw}/down.
func (t Topics) Down(wh, gw string) string { return t.Gateway(TopicDown, wh, gw) }

// Status returns {root}/{wh}/{gw}/status.
func (t Topics) Status(wh, gw string) string { return t.Gateway(TopicStatus, wh, gw) }

// Alerts returns {root}/{wh}/alerts.
func (t Topics) Alerts(wh string) string { return t.Root + "/" + wh + "/alerts" }

// Availability returns {root}/channels/{channel}/availability.
func (t Topics) Availability(channel string) string {
	return t.Root + "/channels/" + channel + "/availability"
}

// OwnerAvailability returns {root}/owners/{owner}/channels/{channel}/availability:
// a channel's availability limited to one owner's skus.
func (t Topics) OwnerAvailability(owner, channel string) string {
	return t.Root + "/owners/" + owner + "/channels/" + channel + "/availability"
}

// OwnerAlerts returns {root}/owners/{owner}/alerts: the alerts and
// conflicts of one owner's stock, over every warehouse.
func (t Topics) OwnerAlerts(owner string) string {
	return t.Root + "/owners/" + owner + "/alerts"
}

// AllUp is the subscription filter for every gateway's up topic.
func (t Topics) AllUp() string { return t.Root + "/+/+/up" }

// AllStatus is the subscription filter for every gateway's status topic.
func (t Topics) AllStatus() string { return t.Root + "/+/+/status" }

// Parse splits a topic under the root, validating every ID in it.
func (t Topics) Parse(topic string) (Topic, error) {
	rest, ok := strings.CutPrefix(topic, t.Root+"/")
	if !ok {
		return Topic{}, fmt.Errorf("topic %q is not under root %q", topic, t.Root)
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 3 && parts[0] == "channels" && parts[2] == string(TopicAvailability):
		if err := ValidateID(parts[1]); err != nil {
			return Topic{}, fmt.Errorf("topic %q channel: %w", topic, err)
		}
		return Topic{Kind: TopicAvailability, Channel: parts[1]}, nil
	case len(parts) == 2 && parts[1] == string(TopicAlerts):
		if err := ValidateID(parts[0]); err != nil {
			return Topic{}, fmt.Errorf("topic %q warehouse: %w", topic, err)
		}
		return Topic{Kind: TopicAlerts, Warehouse: parts[0]}, nil
	case len(parts) == 3:
		kind := TopicKind(parts[2])
		if kind != TopicUp && kind != TopicDown && kind != TopicStatus {
			return Topic{}, fmt.Errorf("topic %q: unknown kind %q", topic, parts[2])
		}
		if err := ValidateID(parts[0]); err != nil {
			return Topic{}, fmt.Errorf("topic %q warehouse: %w", topic, err)
		}
		if err := ValidateID(parts[1]); err != nil {
			return Topic{}, fmt.Errorf("topic %q gateway: %w", topic, err)
		}
		return Topic{Kind: kind, Warehouse: parts[0], Gateway: parts[1]}, nil
	}
	return Topic{}, fmt.Errorf("topic %q: unknown shape", topic)
}
