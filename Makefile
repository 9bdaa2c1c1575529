# regctl: `make test` is the one command that runs every test.
# It installs the pinned test tools into .tools/bin first (idempotent).

GO       ?= go
TOOLS    := $(CURDIR)/.tools/bin
export PATH := $(TOOLS):$(PATH)

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
	$(GO) test -count=1 ./...

clean:
	rm -rf bin .tools
