# Dualgate build and test entry points. `make test` is the one command that
# runs every test on a fresh machine: it installs what the tests need first.

GO       ?= go
GOFLAGS  ?=
# Heavy tests (names contain "Heavy") scale down under -race and run again at
# full size in a separate non-race pass.
HEAVY    := Heavy
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PKGS := chromium pebble dante-server

.PHONY: all build test deps deps-apt deps-web vet fmt-check test-go test-heavy test-web web fuzz-smoke clean

all: build

build:
	$(GO) build ./...

test: deps vet test-go test-heavy test-web
	@echo "make test: all suites passed"

deps: deps-apt deps-web

# Installs the real external components the tests drive: Chromium for the
# browser client, Pebble for ACME, Dante for SOCKS5. Skipped when present.
deps-apt:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pebble >/dev/null 2>&1 || [ -x /usr/bin/pebble ] || missing="$$missing pebble"; \
	command -v danted >/dev/null 2>&1 || [ -x /usr/sbin/danted ] || missing="$$missing dante-server"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS); \
	else echo "deps-apt: chromium, pebble, dante-server present"; fi

deps-web:
	@if [ -f web/package-lock.json ]; then cd web && npm ci --no-audit --no-fund --loglevel=error; fi

vet: fmt-check
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test-go:
	$(GO) test -race -count=1 -timeout 20m ./...

# One package at a time: the heavy tests load both cores on their own, and
# running several at once only turns CPU starvation into timeouts.
test-heavy:
	$(GO) test -p 1 -count=1 -timeout 20m -run '$(HEAVY)' ./...

test-web:
	@if [ -f web/package.json ]; then cd web && npm test; fi

# Rebuilds the embedded browser bundle from web/src.
web:
	cd web && npm run build

# A short run of every fuzz target, for local use (not part of make test).
fuzz-smoke:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
			echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
		done; \
	done

clean:
	$(GO) clean -testcache
