// Package protocol owns shelfsync's wire format: the messages agents and
// servers exchange over MQTT, their deterministic CBOR encoding with safe
// decode limits, the hybrid logical clock that orders operations, the topic
// names, and the sequence/acknowledgement rule both directions share.
//
// The package does no I/O. SPEC.md beside it is the contract a third party
// implements from; golden_test.go checks every hex example in SPEC.md
// against this code byte for byte.
package protocol
