#!/usr/bin/env bash
# bench/cleanup.sh: the speed targets of registry-usage and registry-cleanup.
#
# 1. registry-usage on DESIGN.md's registry (REPOS repositories x 10 tags x
#    4 pushes, about 600 files a repository, written straight into the
#    storage by pkg/gc's generator), against a bare `find` of the same tree.
#    Target: at most 2x find.
# 2. registry-cleanup --dry-run on a local regctl serve (GitLab token auth,
#    tokens minted from the internal key) over TAG_REPOS x TAGS tags, each
#    its own image with its own created date, under a policy that must date
#    every tag (name_regex .*, keep_n 10, older_than 30d). Target: < 10 s.
#
#   bash bench/cleanup.sh [REPOS] [TAG_REPOS] [TAGS]   # defaults 200 (about 120k files), 20, 500
#
# Wall times are the best of 3 warm runs each; the machine is small and
# shared, so compare the printed ratio rather than the absolute figures.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
REPOS="${1:-200}" TAG_REPOS="${2:-20}" TAGS="${3:-500}"
work="$(mktemp -d)"
serve_pid=""
cleanup() {
	if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/regctl" .
go build -o "$work/tagsgen" ./bench/tagsgen

# best CMD...: the best wall time in ms of 3 runs, output discarded.
best() {
	local b="" s e
	for _ in 1 2 3; do
		s=$(date +%s%N)
		"$@" >/dev/null
		e=$(date +%s%N)
		local ms=$(((e - s) / 1000000))
		if [ -z "$b" ] || [ "$ms" -lt "$b" ]; then b=$ms; fi
	done
	echo "$b"
}
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

echo "== registry-usage on $REPOS repositories"
large="$work/large"
REGCTL_BUILD_LARGE="$large" REGCTL_GC_BENCH_REPOS="$REPOS" \
	go test ./pkg/gc -run '^TestBuildLargeRegistry$' -count=1 -timeout 60m >/dev/null
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$large" >"$work/large.yml"
echo "$(find "$large" -type f | wc -l) files, $(du -sh "$large" | cut -f1)"
find "$large" >/dev/null # warm the cache for both
find_ms=$(best find "$large")
usage_ms=$(best "$work/regctl" registry-usage "$work/large.yml")
"$work/regctl" registry-usage --top 3 "$work/large.yml" | sed 's/^/  /'
awk -v f="$find_ms" -v u="$usage_ms" 'BEGIN { printf "find %.2f s, registry-usage %.2f s: %.2fx find (target: at most 2x)\n", f/1000, u/1000, u/f }'

echo "== registry-cleanup --dry-run over $((TAG_REPOS * TAGS)) tags"
site="$work/site"
mkdir -p "$site/root"
"$work/tagsgen" -root "$site/root" -repos "$TAG_REPOS" -tags "$TAGS"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$site/regctl.toml" <<TOML
data_dir = "data"
[registry]
registry_http_addr = "127.0.0.1:$port"
log_level = "error"
[registry.storage.filesystem]
rootdirectory = "$site/root"

[[registry.cleanup_policies]]
name = "bench"
repositories = ["bench/**"]
enabled = true
name_regex = ".*"
keep_n = 10
older_than = "30d"
TOML
"$work/regctl" --settings "$site/regctl.toml" reconfigure >/dev/null
"$work/regctl" serve "$site/data/registry/config.yml" >"$site/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 100); do
	if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then break; fi
	sleep 0.1
done
"$work/regctl" --settings "$site/regctl.toml" registry-cleanup --dry-run | tail -3 | sed 's/^/  /'
dry_ms=$(best "$work/regctl" --settings "$site/regctl.toml" registry-cleanup --dry-run)
echo "registry-cleanup --dry-run: $(secs "$dry_ms") over $((TAG_REPOS * TAGS)) tags (target: under 10 s)"
