# livepaxos: a Multi-Paxos replicated database on actors.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
BIN := bin/livepaxos
PKGS := ./...

.PHONY: all build test race run proto bench peerbench soak failover vet fmt clean image compose-up compose-down fuzz
SEEDS ?= 100000

all: build

build:
	$(GO) build -o $(BIN) ./cmd/livepaxos

## test: vet, then every test (unit, simulator budget, multi-process cluster);
## the packages that run actor systems in the test process run under the race
## detector, beside the others (most of their time, and of tests/', is
## waiting for nodes, so they share the two cores with the simulator).
RACE_PKGS := ./actors ./client ./cluster ./probe ./server
test: build
	$(GO) vet $(PKGS)
	$(MAKE) --no-print-directory -j2 test-plain test-race

.PHONY: test-plain test-race
test-plain:
	LIVEPAXOS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 12m -parallel 4 \
		$$($(GO) list $(PKGS) | grep -v -x $(foreach p,$(RACE_PKGS),-e 'github.com/livepaxos/livepaxos/$(patsubst ./%,%,$(p))'))

test-race:
	$(GO) test -race -count=1 -timeout 12m $(RACE_PKGS)

## race: every test under the race detector (the simulator's seeds take
## about ten minutes so).
race: build
	LIVEPAXOS_BIN=$(abspath $(BIN)) $(GO) test -race -count=1 -timeout 60m $(PKGS)

## run: a local 3-node cluster on 127.0.0.1:7001-7003; Ctrl-C stops all three.
run: build
	./scripts/run-local.sh $(BIN)

## image: the container image livepaxos:dev (FROM scratch; IMAGE=name:tag to
## change it) from a static binary the local toolchain builds.
IMAGE ?= livepaxos:dev
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o bin/livepaxos-static ./cmd/livepaxos
	mkdir -p bin/image-dirs/data bin/image-dirs/certs
	docker build -t $(IMAGE) .

## compose-up: a 3-node cluster with TLS in containers (deploy/compose);
## then: docker-compose -f deploy/compose/docker-compose.yml run --rm client put greeting hello
compose-up: image
	docker-compose -f deploy/compose/docker-compose.yml up -d
	docker-compose -f deploy/compose/docker-compose.yml run --rm -T client status --wait 60s

## compose-down: stop that cluster and remove its containers and network
## (its volumes, data and certificates, stay: add -v by hand to drop them).
compose-down:
	docker-compose -f deploy/compose/docker-compose.yml down --remove-orphans

## proto: regenerate messages/*.pb.go, the gRPC service and its JSON
## gateway (needs protoc: apt-get install protobuf-compiler; the plugins are
## pinned as tools in go.mod).
proto:
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler"; exit 1; }
	$(GO) build -o bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
	$(GO) build -o bin/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc
	$(GO) build -o bin/protoc-gen-grpc-gateway github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway
	protoc --plugin=protoc-gen-go=bin/protoc-gen-go --go_out=. --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc=bin/protoc-gen-go-grpc --go-grpc_out=. --go-grpc_opt=paths=source_relative \
		--plugin=protoc-gen-grpc-gateway=bin/protoc-gen-grpc-gateway --grpc-gateway_out=. \
		--grpc-gateway_opt=paths=source_relative,generate_unbound_methods=true \
		messages/*.proto

## fuzz: every fuzz target for FUZZTIME each (default 1m; the bar for a
## change to a parser or a handler is FUZZTIME=10m), one worker each. What a
## target finds lands in testdata/fuzz/<target> of its package: make it a
## fix and commit the input, which make test then runs as a regression test
## (as it runs every committed corpus).
FUZZTIME ?= 1m
FUZZ_TARGETS := ./core:FuzzReplicaStep ./storage:FuzzWALRecovery ./storage:FuzzSnapshotFile \
	./server:FuzzClientRequest ./cmd/livepaxos:FuzzTxnJSON ./cluster:FuzzParsePeers \
	./db:FuzzApply ./db:FuzzValidateEncoded
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel 1 || exit 1; \
	done

## peerbench: livepaxos beside etcd and hashicorp/raft (../shared/peerbench).
peerbench: build
	PEERBENCH_SYSTEMS="$${PEERBENCH_SYSTEMS:-etcd raft livepaxos}" LIVEPAXOS_BIN=$(abspath $(BIN)) \
		../shared/peerbench/run.sh $${RESULTS:-/tmp/peerbench-results.jsonl}

## soak: the simulator over many seeds (SEEDS=100000), with a progress line;
## prints every failing seed with the command that replays it.
soak:
	$(GO) test ./sim -count=1 -run 'TestSoak$$' -v -timeout 0 -soak-seeds=$(SEEDS)

## failover: kill -9 the master of a fresh 3-node cluster 10 times; median
## time to the first write and the first lease read a new master answers.
failover: build
	LIVEPAXOS_BIN=$(abspath $(BIN)) LIVEPAXOS_FAILOVER_RUNS=$${RUNS:-10} $(GO) test ./tests -count=1 -v -run 'TestPaper5_2_FailoverTime$$' -timeout 30m

## bench: Go benchmarks of the hot paths.
bench:
	$(GO) test -run XXX -bench . -benchtime 2s ./storage ./db
	$(GO) test -run XXX -bench . -benchtime 2000x ./core

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf bin
