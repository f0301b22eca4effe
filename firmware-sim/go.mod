module github.com/shelfsync/shelfsync/firmware-sim

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/mochi-mqtt/server/v2 v2.7.9
	github.com/shelfsync/shelfsync/drivers v0.0.0
	github.com/shelfsync/shelfsync/testbed v0.0.0
	github.com/stretchr/testify v1.12.1
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	golang.org/x/text v0.41.0 // indirect
)

require (
	github.com/gorilla/websocket v1.5.0 // indirect
	github.com/rs/xid v1.4.0 // indirect
	go.bug.st/serial v1.8.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.43.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/shelfsync/shelfsync/protocol => ../protocol

replace github.com/shelfsync/shelfsync/drivers => ../drivers

replace github.com/shelfsync/shelfsync/testbed => ../testbed
