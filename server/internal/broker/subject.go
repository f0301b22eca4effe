package broker

import "strings"

// TopicSubject converts an MQTT topic name or filter to the NATS subject
// the embedded broker files it under, by nats-server's documented rule
// (server/mqtt.go, mqttToNATSSubjectConversion): '/' separates levels as
// '.' does in NATS; a '.' inside a level becomes "//", so an ID such as
// "WH.1" stays one level ("WH//1"); '+' is '*' and '#' is '>'. An empty
// level (a leading, trailing or doubled '/') keeps a '/' so that it stays
// distinct. shelfsync's topics have no empty level and no space (IDs are
// [A-Za-z0-9._-]); TestTopicSubject checks this against the broker.
func TopicSubject(topic string) string {
	var b strings.Builder
	b.Grow(len(topic) + 8)
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		if i > 0 {
			b.WriteByte('.')
		}
		switch l {
		case "":
			b.WriteByte('/')
			continue
		case "+":
			b.WriteByte('*')
			continue
		case "#":
			b.WriteByte('>')
			continue
		}
		b.WriteString(strings.ReplaceAll(l, ".", "//"))
	}
	return b.String()
}
