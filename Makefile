# regctl: `make test` is the one command that runs every test.
# It installs the pinned test tools into .tools/bin first (idempotent).
# The concurrent packages run under the race detector; the others without it
# (with -race, everything would take several more minutes).

GO       ?= go
TOOLS    := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)

# RACE_PKGS run with go test -race (in place of a plain run).
RACE_PKGS := regctl/pkg/registryd regctl/pkg/storage regctl/pkg/maintenance \
	regctl/pkg/notify regctl/pkg/gc regctl/pkg/blobcache regctl/pkg/serve \
	regctl/pkg/gcjob regctl/internal/clock

.PHONY: all build test tools vet fmt-check clean

all: build

build:
	$(GO) build -o bin/regctl .

tools:
	bash scripts/install-tools.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

test: tools fmt-check vet
	$(GO) test -count=1 $(filter-out $(RACE_PKGS),$(shell $(GO) list ./...))
	$(GO) test -race -count=1 $(RACE_PKGS)

clean:
	rm -rf bin .tools
