#!/usr/bin/env bash
# bench/serve.sh: regctl serve against CNCF Distribution v3.1.2 on this
# machine, in the same run, on the same data: push and pull of one image
# (default 256 MiB) and manifest GETs/s at concurrency 32.
#
#   bash bench/serve.sh [SIZE_MIB] [SECONDS]
#
# Prints each registry's figures as JSON and the regctl/Distribution ratios.
# Machines here are small and noisy: compare ratios, and run it twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
size="${1:-256}"
secs="${2:-10}"
bash scripts/install-tools.sh registry >/dev/null
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/regctl" .
go build -o "$work/regbench" ./bench/regbench

config() { # name port
	mkdir -p "$work/$1"
	cat > "$work/$1/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/$1/root
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
YML
}
config regctl 15101
config distribution 15102
"$work/regctl" serve "$work/regctl/config.yml" 2>"$work/regctl.log" &
.tools/bin/registry serve "$work/distribution/config.yml" >"$work/distribution.log" 2>&1 &
for port in 15101 15102; do
	for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break; sleep 0.1; done
done

echo "== regctl serve"
"$work/regbench" -registry 127.0.0.1:15101 -size "$size" -d "${secs}s" | tee "$work/regctl.json"
echo "== CNCF Distribution v3.1.2"
"$work/regbench" -registry 127.0.0.1:15102 -size "$size" -d "${secs}s" | tee "$work/distribution.json"

python3 - "$work/regctl.json" "$work/distribution.json" <<'PY'
import json, sys
r, d = (json.load(open(p)) for p in sys.argv[1:3])
print("== ratios (regctl / Distribution; higher is better)")
for k in ("push_mib_per_s", "pull_mib_per_s", "manifest_gets_per_s"):
    print(f"{k:22s} {r[k]:10.1f} {d[k]:10.1f}   x{r[k]/d[k]:.2f}")
PY
