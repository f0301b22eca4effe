// Package testbed runs shelfsync's real programs together for system tests,
// the chaos soak and the benchmarks: it builds shelfsync-server,
// shelfsync-agent and shelfsync-sim once per test run, starts them (and
// Mosquitto) on free loopback ports, makes a PostgreSQL schema of a test's
// own, and waits on the event a caller needs (a health check answering, a pty
// link appearing, a status field reaching a value) by polling with a
// deadline, never by sleeping a fixed time.
//
// It imports no package of the agent or the server: it drives their
// binaries through flags, HTTP and the scanner's pty, as an operator would.
// Every call returns an error; tests wrap it with their assertion library.
package testbed
