#!/usr/bin/env bash
# bench/cluster.sh: manifest GETs per second on S3, one regctl serve node
# without a shared cache against three nodes on the same bucket with the
# redis blob descriptor cache, in the same run.
#
#   bash bench/cluster.sh [SECONDS]
#
# versitygw (posix backend) and redis-server run here on loopback in a
# temporary folder. The single node reads the storage on every GET (tag
# link, revision link, manifest bytes: 3 S3 requests); a clustered node
# reads the tag link and takes the rest from Redis. A third run, one node
# with the cache, tells the cache's share from the node count. Load:
# bench/regbench,
# one process per node, the concurrency split between them, GETs by tag.
#
# Environment:
#   C=32            total concurrent manifest GETs
#   CLIENT=raw      manifest GET client: raw or nethttp (see bench/regbench)
#
# Everything shares the machine's cores (nodes, versitygw, redis, the
# load): on a 2-core machine three nodes cannot triple anything; the
# figure is what the cache saves in S3 round trips and CPU. Run it twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
secs="${1:-5}"
conc="${C:-32}"
client="${CLIENT:-raw}"
bash scripts/install-tools.sh versitygw redis-server >/dev/null
redis="$(command -v redis-server)"
. bench/lib.sh
bench_workdir

mkdir -p "$work/bin" "$work/s3/single" "$work/s3/cluster"
go build -o "$work/bin/regctl" .
go build -o "$work/bin/regbench" ./bench/regbench

read -r -a ports < <(free_ports 5)
redisport=${ports[0]} single=${ports[1]} nodes=("${ports[2]}" "${ports[3]}" "${ports[4]}")
start_versitygw
(cd "$work" && exec "$redis" --port "$redisport" --bind 127.0.0.1 --save '' --appendonly no) >"$work/redis.log" 2>&1 &
pids+=($!)

# config NAME PORT BUCKET CACHE
config() {
	mkdir -p "$work/$1"
	{
		cat <<YML
version: 0.1
log:
  level: error
storage:
  s3:
    accesskey: $access
    secretkey: $secret
    region: us-east-1
    regionendpoint: $endpoint
    forcepathstyle: true
    bucket: $3
  delete:
    enabled: true
  cache:
    blobdescriptor: $4
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$2
YML
		if [[ $4 == redis ]]; then
			printf 'redis:\n  addrs: [127.0.0.1:%s]\n' "$redisport"
		fi
	} >"$work/$1/config.yml"
}

start() { # NAME PORT
	"$work/bin/regctl" serve "$work/$1/config.yml" 2>"$work/$1.log" &
	pids+=($!)
	wait_up "http://127.0.0.1:$2/v2/" "regctl serve $1" "$work/$1.log"
}

config single "$single" single inmemory
for i in 0 1 2; do config "node$i" "${nodes[$i]}" cluster redis; done

# run LABEL PORT...: one regbench per port, the concurrency split between
# them, all at once; prints the summed GETs/s.
run() {
	local label=$1
	shift
	local per=$((conc / $#)) i=0 p
	local bpids=()
	for p in "$@"; do
		# A 1 MiB image per process, pushed once: only the GETs matter.
		"$work/bin/regbench" -registry "127.0.0.1:$p" -repo "bench/$label$i" -size 1 -layers 1 -rounds 1 \
			-pulls 0 -c "$per" -client "$client" -d "${secs}s" >"$work/$label-$i.json" &
		bpids+=($!)
		i=$((i + 1))
	done
	for p in "${bpids[@]}"; do wait "$p"; done
	python3 - "$label" "$work/$label"-*.json <<'PY'
import json, sys
label, files = sys.argv[1], sys.argv[2:]
runs = [json.load(open(f)) for f in files]
gets = sum(r["manifest_gets_per_s"] for r in runs)
errs = sum(r["manifest_get_errors"] for r in runs)
print(json.dumps({"setup": label, "nodes": len(runs), "manifest_gets_per_s": round(gets, 1), "errors": errs}))
PY
}

echo "# $(nproc) cores, manifest GETs by tag for ${secs}s, concurrency $conc in total, $client client, S3 = versitygw on loopback"
start single "$single"
run single "$single" | tee "$work/single.out"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true
# The cache's share apart from the node count: one node with redis.
start node0 "${nodes[0]}"
run onecached "${nodes[0]}" | tee "$work/onecached.out"
for i in 1 2; do start "node$i" "${nodes[$i]}"; done
run cluster "${nodes[@]}" | tee "$work/cluster.out"

python3 - "$work/single.out" "$work/onecached.out" "$work/cluster.out" <<'PY'
import json, sys
s, o, c = (json.loads(open(p).read().strip().splitlines()[-1]) for p in sys.argv[1:4])
g = lambda r: r["manifest_gets_per_s"]
print(f"== 3 nodes with the redis cache / 1 node without: x{g(c) / g(s):.2f} ({g(c):.0f} against {g(s):.0f} GETs/s)")
print(f"   1 node with the redis cache / 1 node without:  x{g(o) / g(s):.2f} ({g(o):.0f} GETs/s)")
PY
