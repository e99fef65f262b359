# Arbor's build. `make help` lists the targets.

GO        ?= go
# go.podman.io needs no C library with these tags; set them once, here.
TAGS      ?= containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper nri_no_wasm
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/arbor-cri/arbor/version.Version=$(VERSION) -X github.com/arbor-cri/arbor/version.Commit=$(COMMIT)
TESTFLAGS ?=
E2EFLAGS  ?= -timeout 40m
SOCKET    ?= /var/run/arbor/arbor.sock
BIN       := $(CURDIR)/bin

# Debian packages the daemon and its tests use.
APT_PACKAGES := runc crun conmon containernetworking-plugins iptables docker-registry busybox \
	jq skopeo strace util-linux iproute2 procps psmisc curl \
	libgpgme-dev libbtrfs-dev pkg-config

export PATH := $(BIN):$(PATH)

.PHONY: help build deps tools run cni-config test unit e2e critest e2e-kubelet bench cribench vet fmt clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/arbor
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/arbor ./cmd/arbor

deps: ## install the Debian packages Arbor and its tests need (root)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

tools: ## build crictl, critest and ginkgo from cri-tools into bin/
	e2e/scripts/build-cri-tools.sh $(BIN)

CNI_DIR   ?= /etc/cni/net.d
CNI_CONF  := $(CNI_DIR)/10-arbor-bridge.conflist

run: deps build tools cni-config ## install what is missing and run the daemon on the default socket
	@echo "Arbor serves $(SOCKET). In another shell:  crictl -r unix://$(SOCKET) -i unix://$(SOCKET) version"
	$(BIN)/arbor --listen $(SOCKET)

cni-config: ## write a pod network (bridge, no route off the node) to $(CNI_DIR) if it has none
	@if ls $(CNI_DIR)/*.conf* >/dev/null 2>&1; then echo "CNI config present in $(CNI_DIR)"; else \
		mkdir -p $(CNI_DIR) && printf '%s\n' \
		'{"cniVersion":"1.0.0","name":"arbor","plugins":[' \
		'{"type":"bridge","bridge":"arbor0","isGateway":true,"ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]]}},' \
		'{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}' > $(CNI_CONF) && \
		echo "wrote $(CNI_CONF)"; fi

test: deps build tools unit critest e2e ## install what is missing and run every test: unit, CRI conformance, end-to-end

unit: ## unit tests (root: some use real runc, conmon, CNI and storage)
	$(GO) test -tags "$(TAGS)" $(TESTFLAGS) $$($(GO) list -tags "$(TAGS)" ./... | grep -v /e2e)

e2e: build tools ## end-to-end tests against the real daemon, crictl and runtime
	ARBOR_BIN=$(BIN)/arbor CRICTL=$(BIN)/crictl $(GO) test -tags "$(TAGS)" $(E2EFLAGS) $(TESTFLAGS) ./e2e/...

critest: deps ## CRI conformance (critest, mirror mode: the suite, then its benchmarks) against a fresh arbor; results in $TMPDIR/arbor-critest
	e2e/scripts/critest.sh

e2e-kubelet: build tools ## build a real kubelet (minutes) and run static pods through arbor
	e2e/scripts/e2e-kubelet.sh

BENCHFLAGS ?= -json $(BIN)/bench.json
bench: build tools ## latency benchmark against a fresh arbor: 50 pods, 500-container lists, runc floor, RSS (BENCHFLAGS: extra cribench flags)
	ARBOR_BIN=$(BIN)/arbor CRICTL=$(BIN)/crictl $(GO) test -tags "$(TAGS)" -count=1 -v -timeout 60m -run '^TestBenchArbor$$' ./e2e/cmd/cribench -cribench.full -cribench.args="$(BENCHFLAGS)"

cribench: ## build bin/cribench, the CRI benchmark for any socket (cribench -socket A -socket B ...)
	$(GO) build -tags "$(TAGS)" -o $(BIN)/cribench ./e2e/cmd/cribench

vet: ## go vet and gofmt
	$(GO) vet -tags "$(TAGS)" ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }

clean: ## remove build output
	rm -rf $(BIN)
