#!/usr/bin/env bash
# bench/s3.sh: regctl serve on S3 against CNCF Distribution v3.1.2 on the
# same S3 server, in the same run: push and pull of one image (default
# 256 MiB, median of ROUNDS) and manifest GETs/s at concurrency 32, with
# blob GETs redirected to the bucket (the default) and proxied through
# the registry (storage.redirect.disable: true).
#
#   bash bench/s3.sh [SIZE_MIB] [SECONDS]
#
# The S3 server is versitygw (posix backend) started here on loopback, in
# a temporary folder; every registry gets its own bucket on it.
#
# Environment:
#   ROUNDS=3        push+pull rounds per registry (median reported)
#   CLIENT=raw      manifest GET client: raw or nethttp (see bench/regbench)
#   ONLY=...        space-separated subset of: regctl-redirect
#                   regctl-proxied distribution-redirect distribution-proxied
#
# Prints each registry's figures as JSON, then a table with the ratios.
# versitygw_cpu_s is the S3 server's CPU time during that registry's whole
# run: with redirects the blob bytes of a pull are its work, not the
# registry's. Machines here are small and noisy: compare ratios, and run
# it twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
size="${1:-256}"
secs="${2:-5}"
rounds="${ROUNDS:-3}"
client="${CLIENT:-raw}"
only="${ONLY:-regctl-redirect regctl-proxied distribution-redirect distribution-proxied}"
bash scripts/install-tools.sh registry versitygw >/dev/null
. bench/lib.sh
bench_workdir

mkdir -p "$work/bin" "$work/s3"
go build -o "$work/bin/regctl" .
go build -o "$work/bin/regbench" ./bench/regbench

read -r -a ports < <(free_ports 5)
start_versitygw "${ports[0]}"

# config NAME PORT REDIRECT_DISABLE: a bucket of its own (a folder of the
# posix backend) and a config.yml both programs read.
config() {
	mkdir -p "$work/$1" "$work/s3/$1"
	cat >"$work/$1/config.yml" <<YML
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
    secure: false
    bucket: $1
  delete:
    enabled: true
  redirect:
    disable: $3
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$2
YML
}

declare -A port pid label
start() { # name port redirect_disable program...
	local name="$1" p="$2" disable="$3"
	shift 3
	config "$name" "$p" "$disable"
	"$@" serve "$work/$name/config.yml" >"$work/$name.log" 2>&1 &
	pids+=($!)
	port[$name]=$p
	pid[$name]=$!
}
label[regctl-redirect]="regctl serve, S3, redirect"
label[regctl-proxied]="regctl serve, S3, redirect.disable"
label[distribution-redirect]="CNCF Distribution v3.1.2, S3, redirect"
label[distribution-proxied]="CNCF Distribution v3.1.2, S3, redirect.disable"
start regctl-redirect "${ports[1]}" false "$work/bin/regctl"
start regctl-proxied "${ports[2]}" true "$work/bin/regctl"
start distribution-redirect "${ports[3]}" false .tools/bin/registry
start distribution-proxied "${ports[4]}" true .tools/bin/registry
for name in "${!port[@]}"; do
	wait_up "http://127.0.0.1:${port[$name]}/v2/" "$name" "$work/$name.log"
done

cpu_s() { # pid: user+system CPU seconds so far
	python3 -c 'import sys
s = open(f"/proc/{sys.argv[1]}/stat").read()
f = s[s.rindex(")") + 2:].split()
print((int(f[11]) + int(f[12])) / 100)' "$1"
}

bench() { # name
	local name="$1" v0 v1
	echo "== ${label[$name]}"
	sync # the previous run's writes must not be flushed during this one
	v0=$(cpu_s "$vgw_pid")
	if ! "$work/bin/regbench" -registry "127.0.0.1:${port[$name]}" -pid "${pid[$name]}" -size "$size" \
		-rounds "$rounds" -client "$client" -d "${secs}s" >"$work/$name.raw"; then
		echo "s3.sh: regbench failed against $name; its log:" >&2
		tail -20 "$work/$name.log" >&2
		exit 1
	fi
	v1=$(cpu_s "$vgw_pid")
	# How the registry answered a blob GET of the image just pushed: 307
	# (to the bucket) or 200, so a mode that silently fell back shows.
	local base="http://127.0.0.1:${port[$name]}/v2/bench/image" layer status
	layer=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$base/manifests/bench" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])')
	status=$(curl -s -o /dev/null -w '%{http_code}' "$base/blobs/$layer")
	python3 - "$work/$name.raw" "$v0" "$v1" "$status" >"$work/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["versitygw_cpu_s"] = round(float(sys.argv[3]) - float(sys.argv[2]), 2)
r["blob_get_status"] = int(sys.argv[4])
print(json.dumps(r, indent=2))
PY
	cat "$work/$name.json"
}
echo "# $(nproc) cores, size ${size} MiB, ${rounds} rounds, manifest GETs ${secs}s with the $client client; S3: versitygw on loopback"
for name in $only; do
	[[ -n ${port[$name]:-} ]] || { echo "s3.sh: unknown ONLY entry $name" >&2; exit 2; }
	bench "$name"
done

python3 - "$work" $only <<'PY'
import json, os, sys
work, names = sys.argv[1], sys.argv[2:]
res = {n: json.load(open(os.path.join(work, n + ".json"))) for n in names}
keys = ("push_mib_per_s", "pull_mib_per_s", "manifest_gets_per_s",
        "server_cpu_s_per_gib_push", "server_cpu_s_per_gib_pull",
        "server_cpu_us_per_manifest_get", "versitygw_cpu_s")
short = {"regctl-redirect": "regctl/redir", "regctl-proxied": "regctl/proxy",
         "distribution-redirect": "dist/redir", "distribution-proxied": "dist/proxy"}
print("== figures")
print(f"{'':32s}" + "".join(f"{short[n]:>14s}" for n in names))
for k in keys:
    print(f"{k:32s}" + "".join(f"{res[n].get(k, float('nan')):14.2f}" for n in names))
print(f"{'blob_get_status':32s}" + "".join(f"{res[n]['blob_get_status']:14d}" for n in names))

def ratio(a, b, k, lower_better=False):
    if a in res and b in res and res[a].get(k) and res[b].get(k):
        x, y = res[a][k], res[b][k]
        return f"x{(y / x if lower_better else x / y):.2f}"
    return "-"

print("== ratios (higher is better for regctl; CPU rows are the other's cost / regctl's)")
pairs = [("regctl-redirect", "distribution-redirect", "regctl/dist, redirect"),
         ("regctl-proxied", "distribution-proxied", "regctl/dist, proxied"),
         ("regctl-redirect", "regctl-proxied", "regctl redirect/proxied")]
print(f"{'':32s}" + "".join(f"{p[2]:>26s}" for p in pairs))
for k in keys[:6]:
    lower = k.startswith("server_cpu")
    print(f"{k:32s}" + "".join(f"{ratio(a, b, k, lower):>26s}" for a, b, _ in pairs))
PY
