# calstatus — `make run` (demo or real sync through the local Functions host) and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := calstatus
STACK := devtools/stack/stack.sh
REPORT := $(CURDIR)/.stack/test-report.txt
export CALSTATUS_STACK_ENV ?= $(CURDIR)/.stack/env

.PHONY: all build run test unit vet package fuzz race soak bench stack-up stack-down stack-status clean

# The fuzz targets (package: target) and the packages whose code runs concurrently (several shards
# share one process): make test runs both briefly.
FUZZ := ./handler/azfunc:FuzzDecodeInvocation ./internal/shard:FuzzDecode ./internal/graph:FuzzParseBatch \
	./internal/slash:FuzzParsePause ./internal/consent:FuzzCheckState
# A count, not a duration: a -fuzztime duration can fail a clean run with "context deadline exceeded"
# (go.dev/issue/75804, unfixed in Go 1.26).
FUZZTIME ?= 50000x
RACE := ./handler/... ./internal/syncer ./internal/graph ./internal/mattermost ./internal/store ./internal/consent ./internal/slash ./internal/logctx ./internal/selfcheck
# make test runs every test under Mattermost profile v6 (v6.7.2 as built), then the end-to-end
# status suites — every status scenario, the simulated day, the fault soak — again under each
# profile in MM_PROFILES_AGAIN (devtools/stack/README.md says which Mattermost versions behave like
# which profile).
MM_PROFILES_AGAIN ?= v10
STATUS_SUITES := ^(TestScenarios|TestMattermostStatusRows|TestSimulatedDay|TestSoak|TestSyncEndToEnd|TestTransitionLag|TestTeamsCalls|TestTeamsCallsWithoutThePermission|TestAutomaticReplies|TestAutomaticRepliesWithoutThePermission)$$

all: build

## build: the custom handler binary (host.json runs ./calstatus)
build:
	$(GO) build -o $(BIN) .

## run: with no local.settings.json, a demo organisation on the local stack; with one, a real sync
run: build
	$(GO) run ./devtools/cmd/calstatus-run

## test: every test, against Azurite, a real Mattermost server and the Graph simulator
test: build vet
	@CALSTATUS_MM_PROFILE=v6 $(STACK) up || { $(STACK) down; exit 1; }
	@rm -f $(REPORT); status=0; CALSTATUS_TEST_REPORT=$(REPORT) $(GO) test -count=1 -timeout 40m ./... || status=$$?; \
	  $(MAKE) --no-print-directory race fuzz || status=1; \
	  for p in $(MM_PROFILES_AGAIN); do echo "== the status suites under Mattermost profile $$p"; \
	    CALSTATUS_MM_PROFILE=$$p $(STACK) up && CALSTATUS_TEST_REPORT=$(REPORT) \
	    $(GO) test -count=1 -timeout 30m -run '$(STATUS_SUITES)' ./devtools/e2e/ || status=1; done; \
	  if [ -s $(REPORT) ]; then echo "== measured"; cat $(REPORT); fi; \
	  if [ -d .stack/screenshots ]; then echo "== screenshots of the pages: .stack/screenshots/"; ls .stack/screenshots; fi; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK) down; fi; exit $$status

## soak: the fault soak (devtools/e2e TestSoak) over a longer day: SOAK_DAY, every fault once per
## 5 minutes (make test runs a 5-minute day); SOAK_WRITES sets MATTERMOST_WRITE_CONCURRENCY
SOAK_DAY ?= 20m
SOAK_WRITES ?=
soak: build
	@$(STACK) up || { $(STACK) down; exit 1; }
	@rm -f $(REPORT); status=0; CALSTATUS_TEST_REPORT=$(REPORT) CALSTATUS_SOAK_DAY=$(SOAK_DAY) CALSTATUS_SOAK_WRITES=$(SOAK_WRITES) \
	  $(GO) test -count=1 -run '^TestSoak$$' -timeout 3h ./devtools/e2e/ || status=$$?; \
	  if [ -s $(REPORT) ]; then echo "== measured"; cat $(REPORT); fi; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK) down; fi; exit $$status

## bench: Mattermost's write rates, then whole sync cycles at scale (BENCH_USERS) through the local
## host on production's 5-minute schedule; one JSON line per case (BENCH_FLAGS: more flags, e.g.
## -baseline= -period=0 for a quick run; go run ./devtools/cmd/calstatus-bench -h lists them)
BENCH_USERS ?= 2000,10000,100000
BENCH_FLAGS ?=
bench: build
	@$(STACK) up || { $(STACK) down; exit 1; }
	@status=0; $(GO) run ./devtools/cmd/calstatus-bench -users $(BENCH_USERS) $(BENCH_FLAGS) || status=$$?; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK) down; fi; exit $$status

## unit: the tests that need no stack: -short skips those that do (teststack.Require, Azurite)
unit:
	$(GO) test -short -count=1 ./handler/... ./internal/... ./devtools/...

## fuzz: each fuzz target for FUZZTIME (seed corpora in the tests; findings land in testdata/fuzz)
fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; echo "== fuzz $$fn ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$fn$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; done

## race: the race detector over the packages that run concurrently
race:
	$(GO) test -race -count=1 $(RACE)

## package: the deployment zip for Azure Functions (Flex Consumption one-deploy; azd deploys it):
## host.json, <Function>/function.json and the linux/amd64 handler (mode 0755) at its root
package:
	$(GO) run ./devtools/pack/cmd/pack -o dist/calstatus.zip

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

stack-up:
	@$(STACK) up
stack-down:
	@$(STACK) down
stack-status:
	@$(STACK) status

clean:
	rm -f $(BIN)
