#!/usr/bin/env bash
# bench/serve.sh: regctl serve against CNCF Distribution v3.1.2 on this
# machine, in the same run, on the same data: push and pull of one image
# (default 256 MiB, best of ROUNDS by median) and manifest GETs/s at
# concurrency 32.
#
#   bash bench/serve.sh [SIZE_MIB] [SECONDS]
#
# Environment:
#   ROUNDS=3        push+pull rounds per registry (median reported)
#   CLIENT=raw      manifest GET client: raw (cheap keep-alive loop) or nethttp
#   PIN=0           1: server on CPU 0, load generator on CPU 1 (taskset)
#   NOTIFY=0        1: both registries send notifications to a local
#                   webhook receiver (python3), to measure what events cost
#
# Prints each registry's figures as JSON and the regctl/Distribution ratios.
# The load generator shares the machine's cores with the server: the raw
# client keeps its share small, and server_cpu_us_per_manifest_get (from
# /proc) is the per-request cost without the client in it. Machines here
# are small and noisy: compare ratios, and run it twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
size="${1:-256}"
secs="${2:-10}"
rounds="${ROUNDS:-3}"
client="${CLIENT:-raw}"
pin="${PIN:-0}"
notify="${NOTIFY:-0}"
bash scripts/install-tools.sh registry >/dev/null
. bench/lib.sh
bench_workdir

mkdir -p "$work/bin"
go build -o "$work/bin/regctl" .
go build -o "$work/bin/regbench" ./bench/regbench

server_cpu=() client_cpu=()
if [[ $pin == 1 ]]; then
	server_cpu=(taskset -c 0)
	client_cpu=(taskset -c 1)
fi

if [[ $notify == 1 ]]; then
	# A webhook receiver that accepts every event; it shares the cores.
	python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", 15103), H).serve_forever()
' &
	pids+=($!)
fi

config() { # name port
	mkdir -p "$work/$1"
	cat >"$work/$1/config.yml" <<YML
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
	if [[ $notify == 1 ]]; then
		printf 'notifications:\n  endpoints:\n    - name: bench\n      url: http://127.0.0.1:15103/events\n      timeout: 2s\n      backoff: 100ms\n' >>"$work/$1/config.yml"
	fi
}
config regctl 15101
config distribution 15102
"${server_cpu[@]}" "$work/bin/regctl" serve "$work/regctl/config.yml" 2>"$work/regctl.log" &
pids+=($!)
regctl_pid=$!
"${server_cpu[@]}" .tools/bin/registry serve "$work/distribution/config.yml" >"$work/distribution.log" 2>&1 &
pids+=($!)
distribution_pid=$!
for port in 15101 15102; do
	up=
	for _ in $(seq 100); do
		if curl -fs "http://127.0.0.1:$port/v2/" >/dev/null; then up=1; break; fi
		sleep 0.1
	done
	if [[ -z $up ]]; then
		echo "serve.sh: the registry on port $port did not come up; its log:" >&2
		cat "$work/regctl.log" "$work/distribution.log" >&2
		exit 1
	fi
done

bench() { # key port pid label
	echo "== $4"
	sync # the other registry's writes must not be flushed during this one's run
	"${client_cpu[@]}" "$work/bin/regbench" -registry "127.0.0.1:$2" -pid "$3" -size "$size" \
		-rounds "$rounds" -client "$client" -d "${secs}s" | tee "$work/$1.json"
}
echo "# $(nproc) cores, size ${size} MiB, ${rounds} rounds, manifest GETs ${secs}s with the $client client, pinned=$pin, notifications=$notify"
bench regctl 15101 "$regctl_pid" "regctl serve"
bench distribution 15102 "$distribution_pid" "CNCF Distribution v3.1.2"

python3 - "$work/regctl.json" "$work/distribution.json" <<'PY'
import json, sys
r, d = (json.load(open(p)) for p in sys.argv[1:3])
print("== ratios (regctl / Distribution)            regctl  Distribution  ratio")
for k in ("push_mib_per_s", "pull_mib_per_s", "parallel_pull_mib_per_s", "manifest_gets_per_s"):
    if not d.get(k): continue
    print(f"{k:40s} {r[k]:10.1f} {d[k]:10.1f}   x{r[k]/d[k]:.2f}  (higher is better)")
for k in ("server_cpu_us_per_manifest_get", "server_cpu_s_per_gib_push", "server_cpu_s_per_gib_pull"):
    if r.get(k) and d.get(k):
        print(f"{k:40s} {r[k]:10.2f} {d[k]:10.2f}   x{d[k]/r[k]:.2f}  (Distribution's cost / regctl's)")
PY
