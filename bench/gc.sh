#!/usr/bin/env bash
# bench/gc.sh: regctl's garbage collector against CNCF Distribution v3.1.2's
# `registry garbage-collect` on identical copies of one registry, on the
# filesystem and on S3 (versitygw), in one run. The registry is shaped like
# DESIGN.md's measurement: repositories x 10 tags x 4 pushes, shared base
# layers, multi-arch indexes and signatures (written straight into the
# storage layout, not through the HTTP API).
#
#   bash bench/gc.sh [REPOS_FS] [REPOS_S3]     # defaults 200 (about 120k files) and 50
#
# Compare the printed ratios; the machine is small and noisy.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/install-tools.sh registry versitygw >/dev/null
export PATH="$repo/.tools/bin:$PATH"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "== filesystem, ${1:-200} repositories"
REGCTL_GC_BENCH="$work" REGCTL_GC_BENCH_REPOS="${1:-200}" \
	go test ./pkg/gc -run '^TestBenchLarge$' -count=1 -v -timeout 60m | grep -vE '^(=== RUN|--- PASS|PASS|ok)'
echo "== S3 (versitygw), ${2:-50} repositories"
REGCTL_GC_BENCH_S3=1 REGCTL_GC_BENCH_REPOS="${2:-50}" \
	go test ./pkg/gc -run '^TestBenchS3$' -count=1 -v -timeout 60m | grep -vE '^(=== RUN|--- PASS|PASS|ok)'
