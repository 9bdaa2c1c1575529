# bench/lib.sh: what the bench scripts share. Source it from the repo root
# after `set -euo pipefail`:
#
#   . bench/lib.sh
#   bench_workdir                  # $work, $pids, cleanup on exit
#   read -r -a ports < <(free_ports 3)
#   start_versitygw                # $endpoint, $access, $secret, $vgw_pid
#   wait_up URL NAME LOG

# bench_workdir makes the temporary folder $work and kills every pid in
# $pids and removes $work when the script exits.
bench_workdir() {
	work="$(mktemp -d)"
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}

# free_ports N prints N free loopback ports, asked of the kernel rather
# than guessed.
free_ports() {
	python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_up URL NAME LOG waits until URL answers, or prints LOG and exits.
wait_up() {
	for _ in $(seq 100); do
		if curl -s -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "$(basename "$0"): $2 did not come up; its log:" >&2
	cat "$3" >&2
	exit 1
}

# start_versitygw [PORT] runs versitygw (posix backend on $work/s3) with
# made-up root credentials and waits for it: sets $endpoint, $access,
# $secret and $vgw_pid.
start_versitygw() {
	local port="${1:-$(free_ports 1)}"
	mkdir -p "$work/s3"
	access="bench-root"
	secret="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
	endpoint="http://127.0.0.1:$port"
	ROOT_ACCESS_KEY="$access" ROOT_SECRET_KEY="$secret" \
		.tools/bin/versitygw --port "127.0.0.1:$port" --quiet posix "$work/s3" >"$work/versitygw.log" 2>&1 &
	pids+=($!)
	vgw_pid=$!
	wait_up "$endpoint/" versitygw "$work/versitygw.log"
}
