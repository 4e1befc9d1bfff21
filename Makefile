# calstatus — `make run` (demo or real sync through the local Functions host) and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := calstatus
STACK := devtools/stack/stack.sh
REPORT := $(CURDIR)/.stack/test-report.txt
export CALSTATUS_STACK_ENV ?= $(CURDIR)/.stack/env

.PHONY: all build run test unit vet package stack-up stack-down stack-status clean

all: build

## build: the custom handler binary (host.json runs ./calstatus)
build:
	$(GO) build -o $(BIN) .

## run: with no local.settings.json, a demo organisation on the local stack; with one, a real sync
run: build
	$(GO) run ./devtools/cmd/calstatus-run

## test: every test, against Azurite, a real Mattermost server and the Graph simulator
test: build vet
	@$(STACK) up || { $(STACK) down; exit 1; }
	@rm -f $(REPORT); status=0; CALSTATUS_TEST_REPORT=$(REPORT) $(GO) test -count=1 -timeout 20m ./... || status=$$?; \
	  if [ -s $(REPORT) ]; then echo "== measured"; cat $(REPORT); fi; \
	  if [ -d .stack/screenshots ]; then echo "== screenshots of the pages: .stack/screenshots/"; ls .stack/screenshots; fi; \
	  if [ -z "$$KEEP_STACK" ]; then $(STACK) down; fi; exit $$status

## unit: the tests that need no stack: -short skips those that do (teststack.Require, Azurite)
unit:
	$(GO) test -short -count=1 ./handler/... ./internal/... ./devtools/...

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
