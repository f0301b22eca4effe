# shelfsync — make help lists the targets.
SHELL := /bin/bash
MODULES := protocol drivers agent server firmware-sim flagconf testbed
BIN := bin
GOFLAGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
PKGS := $(foreach m,$(MODULES),./$(m)/...)

.PHONY: help build test test-integration test-run check-tracked run bench lint cross chaos fuzz clean tidy

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build shelfsync-server, shelfsync-agent and shelfsync-sim into bin/
	@mkdir -p $(BIN)
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsync-server ./server/cmd/shelfsync-server
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsync-agent ./agent/cmd/shelfsync-agent
	go build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsync-sim ./firmware-sim/cmd/shelfsync-sim

# TEST_ALLOW=FILE (what .ci/run sets): the tests run with -json, and
# .ci/testreport.go prints a report that lists every skipped test and fails
# on a skip FILE does not allow.
ifdef TEST_ALLOW
TEST_REPORT = -json $(1) | go run .ci/testreport.go -allow $(TEST_ALLOW)
else
TEST_REPORT = $(1)
endif

test: build ## run every test that needs no outside service (about 4 minutes on 2 cores)
	set -o pipefail; go test -count=1 -timeout 8m $(call TEST_REPORT,$(PKGS))

test-integration: build ## run tests against real Mosquitto/PostgreSQL/Chromium (installs them first)
	deploy/dev/services.sh
	set -o pipefail; eval "$$(deploy/dev/env.sh)" && SHELFSYNC_INTEGRATION=1 go test -count=1 -timeout 30m -run Integration $(call TEST_REPORT,$(PKGS))

test-run: build ## check that `make run` comes up and stops within 5 s on Ctrl-C or SIGTERM, leaving no process behind
	deploy/dev/run_test.sh

check-tracked: ## fail if git tracks a binary over 1 MB or a rapid failure file
	.ci/check-tracked

run: build ## run server (embedded broker + Badger), one agent and a simulated scanner shift
	deploy/dev/run.sh

bench: build ## run the benchmarks (~25 min, 12 of them the whole 200 MB stock import): one JSON line per figure into bench/results.jsonl, then BENCHMARKS.md
	@mkdir -p bench
	@: > bench/results.jsonl
	go run ./agent/cmd/shelfsync-agent-bench -out bench/results.jsonl
	go run ./server/cmd/shelfsync-server-bench -out bench/results.jsonl
	go run ./firmware-sim/cmd/shelfsync-chaos latency -out bench/results.jsonl
	go run ./bench/render.go -in bench/results.jsonl -notes bench/NOTES.md -out BENCHMARKS.md

chaos: build ## soak under faults: 10 agents, >=100,000 ops, >=100 faults, kill -9s (SEED=n); exit 1 if an op was lost or duplicated
	go run ./firmware-sim/cmd/shelfsync-chaos -seed $${SEED:-1} -agents 10 -ops 100000 -faults 100

lint: ## go vet and staticcheck over every module
	go vet $(PKGS)
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	@for spec in $$(grep -rl --include='*_test.go' '^func Fuzz' protocol drivers agent server firmware-sim | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$spec/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$spec $$f"; go test ./$$spec -run XXX -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} || exit 1; \
	  done; done

cross: ## build the agent for linux/arm64 and linux/arm/v7 into bin/
	@mkdir -p $(BIN)
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsync-agent-linux-arm64 ./agent/cmd/shelfsync-agent
	GOOS=linux GOARCH=arm GOARM=7 CGO_ENABLED=0 go build -ldflags '$(LDFLAGS)' -o $(BIN)/shelfsync-agent-linux-armv7 ./agent/cmd/shelfsync-agent

tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && go mod tidy) || exit 1; done

clean: ## remove bin/ and the demo data
	rm -rf $(BIN) shelfsync-data
