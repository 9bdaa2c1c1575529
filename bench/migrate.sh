#!/usr/bin/env bash
# bench/migrate.sh: `regctl migrate-storage` against `rclone sync` (Debian's
# rclone, its defaults) and 64 concurrent bare PUTs (the ceiling: no
# listing, no comparison), copying one generated registry into buckets of
# one S3 server (versitygw, posix backend, on loopback), in one run.
#
#   bash bench/migrate.sh [REPOS]
#
# REPOS (default 40) sets the registry's size: each repository has 10 tags
# pushed 4 times, 5 new layers per push, about 610 files and 4.6 MiB.
# The default, about 24,000 files and 220 MiB, runs in a few minutes.
# REPOS=200 is the registry DESIGN.md measures (about 122,000 files and
# 1 GB): allow 15 to 20 minutes, most of it rclone's.
#
# Environment:
#   ONLY="put regctl rclone"   subset to run; add "aws" for `aws s3 sync`
#                              (the aws CLI must be installed; it is slow)
#   BIG=2                      blobs of 12 MiB added (multipart copies)
#
# For each tool: a full copy into a fresh bucket, then (regctl, rclone) an
# unchanged re-run, then (regctl) one re-tag and --verify. Prints each
# figure, then the ratios. Machines here are small and noisy (the S3
# server shares the 2 cores with the client): compare ratios, run twice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
repos="${1:-40}"
only="${ONLY:-put regctl rclone}"
big="${BIG:-2}"
bash scripts/install-tools.sh versitygw >/dev/null
if [[ " $only " == *" rclone "* ]] && ! command -v rclone >/dev/null; then
	echo "migrate.sh: installing rclone (Debian package)" >&2
	apt-get install -y -qq rclone >/dev/null || { echo "migrate.sh: apt-get install rclone failed: run apt-get update, or leave rclone out of ONLY" >&2; exit 1; }
fi
. bench/lib.sh
bench_workdir

mkdir -p "$work/bin" "$work/s3"
go build -o "$work/bin/regctl" .
go build -o "$work/bin/migbench" ./bench/migbench

start_versitygw

echo "# $(nproc) cores; versitygw on loopback; generating a registry of $repos repositories"
"$work/bin/migbench" gen -root "$work/src" -repos "$repos" -big "$big" | tee "$work/gen.json"
sync

cpu_s() { # pid: user+system CPU seconds so far
	python3 -c 'import sys
s = open(f"/proc/{sys.argv[1]}/stat").read()
f = s[s.rindex(")") + 2:].split()
print((int(f[11]) + int(f[12])) / 100)' "$1"
}

# measure NAME CMD...: wall seconds and the S3 server's CPU seconds.
measure() {
	local name="$1" t0 t1 v0 v1
	shift
	sync
	v0=$(cpu_s "$vgw_pid")
	t0=$(date +%s.%N)
	if ! "$@" >"$work/$name.out" 2>&1; then
		echo "migrate.sh: $name failed:" >&2
		tail -20 "$work/$name.out" >&2
		exit 1
	fi
	t1=$(date +%s.%N)
	v1=$(cpu_s "$vgw_pid")
	python3 -c 'import json, sys; print(json.dumps({"run": sys.argv[1], "seconds": round(float(sys.argv[3]) - float(sys.argv[2]), 2), "versitygw_cpu_s": round(float(sys.argv[5]) - float(sys.argv[4]), 2)}))' \
		"$name" "$t0" "$t1" "$v0" "$v1" | tee -a "$work/results.jsonl"
}

cat >"$work/config.yml" <<YML
version: 0.1
storage:
  filesystem:
    rootdirectory: $work/src
YML
settings() { # bucket
	cat >"$work/$1.toml" <<TOML
[migration.s3]
accesskey = "$access"
secretkey = "$secret"
region = "us-east-1"
regionendpoint = "$endpoint"
bucket = "$1"
pathstyle = true
TOML
	echo "$work/$1.toml"
}
export RCLONE_CONFIG_VGW_TYPE=s3 RCLONE_CONFIG_VGW_PROVIDER=Other RCLONE_CONFIG_VGW_REGION=us-east-1 \
	RCLONE_CONFIG_VGW_ACCESS_KEY_ID="$access" RCLONE_CONFIG_VGW_SECRET_ACCESS_KEY="$secret" \
	RCLONE_CONFIG_VGW_ENDPOINT="$endpoint" RCLONE_CONFIG_VGW_FORCE_PATH_STYLE=true RCLONE_CONFIG=/dev/null

for tool in $only; do
	mkdir -p "$work/s3/bench-$tool"
	case $tool in
	put)
		measure put env AWS_ACCESS_KEY_ID="$access" AWS_SECRET_ACCESS_KEY="$secret" \
			"$work/bin/migbench" put -root "$work/src" -endpoint "$endpoint" -bucket bench-put -c 64
		;;
	regctl)
		s="$(settings bench-regctl)"
		measure regctl "$work/bin/regctl" --settings "$s" migrate-storage "$work/config.yml"
		measure regctl-rerun "$work/bin/regctl" --settings "$s" migrate-storage "$work/config.yml"
		# One re-tag: a current/link of the same size with another digest.
		link=$(find "$work/src/docker/registry/v2/repositories" -path '*/tags/v0/current/link' -print -quit)
		other=$(cat "$(dirname "$(dirname "$link")")/../v1/current/link")
		printf '%s' "$other" >"$link"
		measure regctl-retag "$work/bin/regctl" --settings "$s" -o json migrate-storage "$work/config.yml"
		grep -q '"copied": 1,' "$work/regctl-retag.out" || { echo "migrate.sh: the re-tag run did not copy exactly 1 object:" >&2; cat "$work/regctl-retag.out" >&2; exit 1; }
		measure regctl-verify "$work/bin/regctl" --settings "$s" migrate-storage --verify "$work/config.yml"
		;;
	rclone)
		# AWS_CA_BUNDLE makes rclone's S3 backend fail to start.
		measure rclone env -u AWS_CA_BUNDLE rclone sync "$work/src" vgw:bench-rclone
		measure rclone-rerun env -u AWS_CA_BUNDLE rclone sync "$work/src" vgw:bench-rclone
		;;
	aws)
		measure aws env AWS_ACCESS_KEY_ID="$access" AWS_SECRET_ACCESS_KEY="$secret" AWS_DEFAULT_REGION=us-east-1 \
			aws --endpoint-url "$endpoint" s3 sync --only-show-errors "$work/src" s3://bench-aws
		;;
	*)
		echo "migrate.sh: unknown ONLY entry $tool" >&2
		exit 2
		;;
	esac
done

python3 - "$work/results.jsonl" "$work/gen.json" <<'PY'
import json, sys
res = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    res[r["run"]] = r
gen = json.load(open(sys.argv[2]))
print(f"== {gen['files']} files, {gen['bytes'] / 2**20:.0f} MiB")
print(f"{'run':16s}{'seconds':>10s}{'files/s':>10s}{'S3 CPU s':>10s}")
for name, r in res.items():
    print(f"{name:16s}{r['seconds']:10.1f}{gen['files'] / max(r['seconds'], 0.01):10.0f}{r['versitygw_cpu_s']:10.1f}")
def ratio(a, b):
    if a in res and b in res:
        return f"{res[b]['seconds'] / res[a]['seconds']:.2f}x"
    return "-"
print("== ratios (the other's time / regctl's; > 1 means regctl is faster)")
print(f"{'regctl vs rclone sync, full copy':44s}{ratio('regctl', 'rclone'):>8s}   (target >= 2x)")
print(f"{'regctl vs rclone sync, unchanged re-run':44s}{ratio('regctl-rerun', 'rclone-rerun'):>8s}")
print(f"{'regctl vs aws s3 sync, full copy':44s}{ratio('regctl', 'aws'):>8s}   (target >= 5x)")
if "regctl" in res and "put" in res:
    print(f"{'regctl / 64 bare PUTs (time ratio)':44s}{res['regctl']['seconds'] / res['put']['seconds']:7.2f}x   (target <= 1.5x)")
if "regctl-rerun" in res:
    print(f"{'regctl unchanged re-run':44s}{res['regctl-rerun']['seconds']:7.1f}s   (target < 15 s at 120k files)")
PY
