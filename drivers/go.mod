module github.com/shelfsync/shelfsync/drivers

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/stretchr/testify v1.12.1
	go.bug.st/serial v1.8.0
	pgregory.net/rapid v1.3.0
)

require (
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.43.0 // indirect
)
