# Sedna (Go). `make help` lists the targets.

SHELL := /usr/bin/env bash
GO ?= go
OUTPUT_DIR := $(CURDIR)/_output
BIN_DIR := $(OUTPUT_DIR)/bin
# Two cores: two packages at a time keeps the machine responsive.
GO_TEST_FLAGS ?= -race -p 2 -timeout 20m
# The whole-process benchmarks set their own iteration counts below.
BENCH_FLAGS ?= -run '^$$' -bench . -skip 'Channel' -benchmem
export KUBEBUILDER_ASSETS := $(BIN_DIR)

COMMANDS := $(notdir $(wildcard cmd/*))
# Images (make images, make push): names from hack/local-up/images.txt, under IMAGE_REPO when set;
# IMAGE_TAG tags all but the example images, which keep the tag examples/ uses.
IMAGE_REPO ?=
IMAGE_TAG ?= v0.7.0
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGES ?=

.PHONY: help
help: ## Show this help.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "%-24s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build sedna-gm, sedna-lc and the other commands into _output/bin.
	@mkdir -p $(BIN_DIR)
	@if [ -n "$(COMMANDS)" ]; then $(GO) build -o $(BIN_DIR)/ $(addprefix ./cmd/,$(COMMANDS)); fi

.PHONY: images
images: ## OCI images of every command and example worker, no Docker (IMAGE_TAG, IMAGE_REPO, IMAGES="sedna-gm,...").
	$(GO) run ./hack/images build --out $(OUTPUT_DIR)/images --tag $(IMAGE_TAG) --repo "$(IMAGE_REPO)" \
		--platforms $(IMAGE_PLATFORMS) --only "$(IMAGES)"

.PHONY: push
push: ## Push the images of `make images` to IMAGE_REPO with IMAGE_TAG (docker config credentials).
	$(GO) run ./hack/images push --out $(OUTPUT_DIR)/images --tag $(IMAGE_TAG) --repo "$(IMAGE_REPO)"

.PHONY: install-test-binaries
install-test-binaries: ## Build etcd, kube-apiserver, -controller-manager, -scheduler, kubectl, versitygw (cached).
	hack/install-test-binaries.sh

.PHONY: test
test: install-test-binaries ## Unit and integration tests with the race detector.
	$(GO) test $(GO_TEST_FLAGS) ./...

.PHONY: unit
unit: install-test-binaries ## Unit tests only (no control plane; S3 tests use versitygw).
	$(GO) test $(GO_TEST_FLAGS) $$($(GO) list ./... | grep -v /test/)

.PHONY: integration
integration: install-test-binaries ## Integration tests against a real kube-apiserver and etcd.
	$(GO) test $(GO_TEST_FLAGS) ./test/integration/...

.PHONY: e2e
e2e: install-test-binaries ## End-to-end tests on local Sedna (real GM, LCs and worker processes).
	$(GO) test -tags e2e -p 1 -count=1 -timeout 45m -v ./test/e2e/...

# The real-node tier's images: the pod sandbox, Sedna's and the joint inference demo's, for this
# machine, in a directory of their own (make images' output stays as it is).
E2E_REAL_IMAGES := sedna-pause,sedna-gm,sedna-lc,sedna-kb,mnist-edge,mnist-cloud

.PHONY: install-node-binaries
install-node-binaries: ## Build kubelet and kube-proxy for the real-node tier (cached).
	hack/install-node-binaries.sh

.PHONY: e2e-real
e2e-real: install-test-binaries install-node-binaries ## install.sh on real nodes (containerd, kubelet) and the joint inference demo in real containers; needs root.
	$(GO) run ./hack/images build --out $(OUTPUT_DIR)/images-e2e-real --tag $(IMAGE_TAG) --repo "" \
		--platforms $$($(GO) env GOOS)/$$($(GO) env GOARCH) --only "$(E2E_REAL_IMAGES)"
	$(GO) build -o $(BIN_DIR)/ ./examples/joint_inference/mnist/cmd/...
	$(GO) test -tags e2ereal -p 1 -count=1 -timeout 30m -v ./test/realnode/...

# Not in .ci/run (CI's time): KubeEdge's build alone is nine minutes cold. Needs root (docs/install.md).
.PHONY: e2e-kubeedge
e2e-kubeedge: install-test-binaries install-node-binaries ## Sedna by install.sh on a real KubeEdge edge node (edgecore on containerd) and a kubelet cloud node.
	hack/install-kubeedge.sh >/dev/null
	$(GO) run ./hack/images build --out $(OUTPUT_DIR)/images-e2e-kubeedge --tag $(IMAGE_TAG) --repo "" \
		--platforms $$($(GO) env GOOS)/$$($(GO) env GOARCH) --only "sedna-pause,sedna-gm,sedna-lc,sedna-kb"
	$(GO) test -tags e2ekubeedge -p 1 -count=1 -timeout 40m -v -run TestSednaOnKubeEdge ./test/kubeedge/

.PHONY: scale
scale: install-test-binaries ## Scale measurements on a local control plane (SCALE_N, SCALE_FLEET_N="100,1000,5000", SCALE_FLEET_OBJECTS, SCALE_REPORTS_PER_LC, SCALE_REPORT_RATE, SCALE_LCS_PER_PROCESS); prints the tables. Take it under flock /tmp/sedna-heavy.lock on a shared machine.
	$(GO) test -tags scale -p 1 -count=1 -timeout 120m -v -run 'TestConvergence|TestFleet' ./test/scale/

.PHONY: chaos
chaos: install-test-binaries ## Fault campaign on local Sedna (CHAOS_SEED, CHAOS_DURATION, CHAOS_FAULTS; as root edge nodes in network namespaces, CHAOS_NETNS=0 for the relay); prints the table.
	$(GO) test -tags chaos -p 1 -count=1 -timeout 40m -v -run 'TestCampaign' ./test/chaos/

.PHONY: local-up
local-up: install-test-binaries ## Run Sedna on this machine until Ctrl-C (hack/local-up.sh; ARGS="--demo").
	hack/local-up.sh $(ARGS)

.PHONY: bench
bench: ## Benchmarks (testing.B) with the commands docs/performance.md records.
	$(GO) test $(BENCH_FLAGS) ./pkg/...
	$(GO) test -run '^$$' -bench 'Channel1000Nodes' -benchtime 50x ./pkg/globalmanager/messagelayer/
	$(GO) test -run '^$$' -bench 'ChannelPaced' -benchtime 10000x ./pkg/globalmanager/messagelayer/
	$(GO) test -run '^$$' -bench . -benchtime 1x ./test/benchmark/

.PHONY: codegen
codegen: ## Regenerate deepcopy and the typed client.
	hack/update-codegen.sh

.PHONY: crds
crds: ## Regenerate build/crds.
	hack/update-crds.sh

.PHONY: chart
chart: ## Regenerate charts/sedna's CRDs, build/-derived templates and values from build/.
	hack/update-chart.sh

.PHONY: update
update: codegen crds chart ## Regenerate everything generated.

.PHONY: verify
verify: ## gofmt, go vet, golangci-lint, generated code, CRDs and chart up to date, helm lint and chart test.
	hack/verify-gofmt.sh
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	$(GO) vet -tags e2ereal ./test/realnode/...
	$(GO) vet -tags e2ekubeedge ./test/kubeedge/
	hack/verify-golangci-lint.sh
	hack/verify-codegen.sh
	hack/verify-crds.sh
	hack/verify-chart.sh

.PHONY: clean
clean: ## Remove build output (the test-binary cache outside the clone is kept).
	rm -rf $(OUTPUT_DIR)
