#!/usr/bin/env bash
# bench/gc.sh: `regctl registry-garbage-collect` against CNCF Distribution
# v3.1.2's `registry garbage-collect`, on identical copies of one registry,
# on the filesystem and on S3 (versitygw), side by side in one run.
#
# The registry is built through the HTTP API: bench/gcbench pushes to a
# `regctl serve` REPOS repositories x 10 tags x 4 pushes (overwritten
# tags, two-platform indexes, layers shared by every repository, cosign
# signatures pushed by digest). `regctl migrate-storage` then copies that
# root into a versitygw bucket, so both storages hold the same data.
#
#   bash bench/gc.sh [REPOS]     # default 200: DESIGN.md's ~120k files, ~1 GB
#   bash bench/gc.sh 10          # a smoke run of a minute or two
#
# Environment:
#   S3=1        0 skips S3 (Distribution needs minutes there: about 2 s per
#               repository and run at full size)
#   REAL=1      0 skips the real -m runs (on fresh identical copies); the
#               dry runs, with and without -m, always run
#   C=16        repositories pushed at once
#
# Each collector runs on its own copy (dry runs share one: they change
# nothing). On S3 regctl runs both cold (a registry it never collected)
# and warm (with the manifest cache an earlier run left). Prints each
# timing as JSON, then the ratios Distribution / regctl. The machine is
# small and noisy: run it twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
repos="${1:-200}"
s3="${S3:-1}"
real="${REAL:-1}"
conc="${C:-16}"
bash scripts/install-tools.sh registry versitygw >/dev/null
. bench/lib.sh
bench_workdir
mkdir -p "$work/bin" "$work/s3"
go build -o "$work/bin/regctl" .
go build -o "$work/bin/gcbench" ./bench/gcbench
regctl="$work/bin/regctl"
dist="$repo/.tools/bin/registry"

fs_config() { # name root
	cat >"$work/$1.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
YML
	echo "$work/$1.yml"
}

# 1. Build the registry through the API.
port=$(free_ports 1)
cfg=$(fs_config build "$work/fs/dryrun")
printf 'http:\n  addr: 127.0.0.1:%s\n' "$port" >>"$cfg"
"$regctl" serve "$cfg" 2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
wait_up "http://127.0.0.1:$port/v2/" "regctl serve" "$work/serve.log"
echo "# $(nproc) cores; pushing $repos repositories x 10 tags x 4 pushes to regctl serve, $conc at once"
"$work/bin/gcbench" -registry "127.0.0.1:$port" -repos "$repos" -c "$conc" | tee "$work/build.json"
kill -TERM "$serve_pid"
wait "$serve_pid" || true
root="$work/fs/dryrun"
echo "# $(find "$root" -type f | wc -l) files, $(du -sm "$root" | cut -f1) MiB"
sync

# measure NAME CMD...: wall seconds, appended to results.jsonl.
measure() {
	local name="$1" t0 t1
	shift
	sync
	t0=$(date +%s.%N)
	if ! "$@" >"$work/$name.out" 2>"$work/$name.err"; then
		echo "gc.sh: $name failed:" >&2
		tail -20 "$work/$name.out" "$work/$name.err" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	python3 -c 'import json, sys; print(json.dumps({"run": sys.argv[1], "seconds": round(float(sys.argv[3]) - float(sys.argv[2]), 2)}))' \
		"$name" "$t0" "$t1" | tee -a "$work/results.jsonl"
}
# summary FILE: what regctl's -m deleted, from its JSON report.
summary() {
	python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["report"]
print(f"  regctl -m: {r['ManifestsDeleted']} manifests, {r['BlobsDeleted']} blobs ({r['BytesFreed'] / 2**20:.0f} MiB) deleted; {r['ReferrersKept']} referrers kept that Distribution deletes")
PY
}

# 2. Filesystem: the dry runs on the built root, then -m on two copies.
echo "== filesystem"
dry_cfg=$(fs_config fs-dry "$root")
for m in "" "-m"; do
	measure "fs-dist-dry$m" "$dist" garbage-collect --dry-run -q $m "$dry_cfg"
	measure "fs-regctl-dry$m" "$regctl" registry-garbage-collect --dry-run $m "$dry_cfg"
done
if [[ $real == 1 ]]; then
	cp -a "$root" "$work/fs/dist"
	cp -a "$root" "$work/fs/regctl"
	measure "fs-dist-m" "$dist" garbage-collect -q -m "$(fs_config fs-dist "$work/fs/dist")"
	measure "fs-regctl-m" "$regctl" -o json registry-garbage-collect -m "$(fs_config fs-regctl "$work/fs/regctl")"
	summary "$work/fs-regctl-m.out"
fi

# 3. S3: the same root copied into versitygw buckets by migrate-storage.
if [[ $s3 == 1 ]]; then
	echo "== S3 (versitygw)"
	start_versitygw
	s3_config() { # bucket
		cat >"$work/s3-$1.yml" <<YML
version: 0.1
log:
  level: error
storage:
  s3:
    accesskey: "$access"
    secretkey: "$secret"
    region: us-east-1
    regionendpoint: "$endpoint"
    bucket: $1
    forcepathstyle: true
    secure: false
  delete:
    enabled: true
YML
		cat >"$work/s3-$1.toml" <<TOML
[migration.s3]
accesskey = "$access"
secretkey = "$secret"
region = "us-east-1"
regionendpoint = "$endpoint"
bucket = "$1"
pathstyle = true
TOML
		mkdir -p "$work/s3/$1"
		"$regctl" --settings "$work/s3-$1.toml" migrate-storage "$dry_cfg" >"$work/migrate-$1.out" 2>&1 ||
			{ echo "gc.sh: copying into bucket $1 failed:" >&2; tail -20 "$work/migrate-$1.out" >&2; exit 1; }
		echo "$work/s3-$1.yml"
	}
	s3_dist=$(s3_config gc-dist)
	regctl_bucket=gc-dist
	if [[ $real == 1 ]]; then
		regctl_bucket=gc-regctl
		s3_config gc-regctl >/dev/null
		s3_config gc-regctl-cold >/dev/null
	fi
	s3_regctl="$work/s3-$regctl_bucket.yml"
	# forget_cache BUCKET removes regctl's manifest cache (a file in
	# versitygw's posix folder): the next run is one on a registry regctl
	# never collected. A warm run follows another run, as nightly GC does.
	forget_cache() { rm -f "$work/s3/$1/docker/registry/v2/_regctl/gc/manifest-cache"; }
	for m in "" "-m"; do
		measure "s3-dist-dry$m" "$dist" garbage-collect --dry-run -q $m "$s3_dist"
		forget_cache "$regctl_bucket"
		measure "s3-regctl-dry$m-cold" "$regctl" registry-garbage-collect --dry-run $m "$s3_regctl"
		measure "s3-regctl-dry$m-warm" "$regctl" registry-garbage-collect --dry-run $m "$s3_regctl"
	done
	if [[ $real == 1 ]]; then
		measure "s3-dist-m" "$dist" garbage-collect -q -m "$s3_dist"
		measure "s3-regctl-m-warm" "$regctl" -o json registry-garbage-collect -m "$s3_regctl"
		summary "$work/s3-regctl-m-warm.out"
		measure "s3-regctl-m-cold" "$regctl" -o json registry-garbage-collect -m "$work/s3-gc-regctl-cold.yml"
	fi
fi

python3 - "$work/results.jsonl" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    x = json.loads(line)
    r[x["run"]] = x["seconds"]
print("== Distribution / regctl (wall time; higher is better for regctl)")
labels = {"dry": "dry run", "dry-m": "dry run -m", "m": "-m (deleting)"}
for st in ("fs", "s3"):
    for run in ("dry", "dry-m", "m"):
        d = r.get(f"{st}-dist-{run}")
        # On S3: cold is a first run, warm one with the manifest cache.
        for cache in ("", "-cold", "-warm"):
            g = r.get(f"{st}-regctl-{run}{cache}")
            if d is None or g is None:
                continue
            label = labels[run] + cache.replace("-", " ")
            print(f"{st:3s} {label:19s} Distribution {d:8.2f} s   regctl {g:7.2f} s   x{d / g:.1f}")
PY
