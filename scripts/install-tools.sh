#!/usr/bin/env bash
# install-tools.sh installs the real programs regctl's tests run against into
# the repo-local folder .tools/bin. Tests look there first, then on $PATH.
#
#   scripts/install-tools.sh            install or update every tool
#   scripts/install-tools.sh registry   only the named tools
#
# Idempotent: a Go tool is skipped when .tools/bin/<name> exists and
# .tools/bin/.<name>.version holds exactly the pinned module@version below.
set -euo pipefail

# Go tools: one line each, "<binary name>=<module path>@<version>".
# The binary name must be the last element of the package path (go install's rule).
GO_TOOLS=(
	"registry=github.com/distribution/distribution/v3/cmd/registry@v3.1.2"
	"versitygw=github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	"conformance=github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"
	# Referrers clients (OCI 1.1 and the referrers tag schema); cosign takes
	# about 9 minutes to build.
	"oras=oras.land/oras/cmd/oras@v1.3.6"
	"cosign=github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5"
)

# System tools from Debian: one line each, "<binary name>=<apt package>".
APT_TOOLS=(
	"openssl=openssl"
	"redis-server=redis-server"
	# chattr +i makes a file undeletable even for root (integration GC failure tests).
	"chattr=e2fsprogs"
	# script(1) runs regctl on a pseudo-terminal (integration cleanup tests).
	"script=bsdutils"
	# "skopeo=skopeo"
)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$repo/.tools/bin"
mkdir -p "$bin"

SELECTED=("$@")
for n in "${SELECTED[@]}"; do
	case " ${GO_TOOLS[*]%%=*} ${APT_TOOLS[*]%%=*} " in
	*" $n "*) ;;
	*) echo "unknown tool '$n' (known: ${GO_TOOLS[*]%%=*} ${APT_TOOLS[*]%%=*})" >&2; exit 2 ;;
	esac
done

# wanted NAME: true when no names were given on the command line or NAME is one of them.
wanted() {
	local n
	[[ ${#SELECTED[@]} -eq 0 ]] && return 0
	for n in "${SELECTED[@]}"; do
		[[ $n == "$1" ]] && return 0
	done
	return 1
}

install_go_tool() {
	local name="$1" spec="$2"
	local target="$bin/$name" stamp="$bin/.$name.version"
	if [[ -x $target && -f $stamp && "$(<"$stamp")" == "$spec" ]]; then
		echo "$name: up to date ($spec)"
		return 0
	fi
	command -v go >/dev/null || { echo "$name: go is not on PATH" >&2; return 1; }
	rm -f "$stamp"
	local start=$SECONDS
	# Run outside the module so regctl's go.mod is neither read nor touched.
	# (set -e does not apply inside a function called from ||: check each step.)
	if ! (cd / && GOBIN="$bin" go install "$spec"); then
		echo "$name: go install $spec failed" >&2
		return 1
	fi
	[[ -x $target ]] || { echo "$name: go install did not produce $target" >&2; return 1; }
	printf '%s\n' "$spec" >"$stamp"
	echo "$name: installed $spec in $((SECONDS - start))s"
}

install_apt_tool() {
	local name="$1" pkg="$2" path
	if path="$(command -v "$name")"; then
		echo "$name: present ($path)"
		return 0
	fi
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		echo "$name: missing; install the Debian package '$pkg' (apt-get install -y $pkg) as root" >&2
		return 1
	fi
	if [[ -z ${APT_UPDATED:-} ]]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -qq || { echo "apt-get update failed" >&2; return 1; }
		APT_UPDATED=1
	fi
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null; then
		echo "$name: apt-get install $pkg failed" >&2
		return 1
	fi
	echo "$name: installed Debian package $pkg ($(command -v "$name"))"
}

status=0
for entry in "${GO_TOOLS[@]}"; do
	wanted "${entry%%=*}" || continue
	install_go_tool "${entry%%=*}" "${entry#*=}" || status=1
done
for entry in "${APT_TOOLS[@]}"; do
	wanted "${entry%%=*}" || continue
	install_apt_tool "${entry%%=*}" "${entry#*=}" || status=1
done
exit "$status"
