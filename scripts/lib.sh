# Shared helpers for the scripts: install missing Debian packages and make
# sure a Go toolchain is there (go.mod names the exact version; the go
# command fetches it from the module proxy when the local one is older).

# FYNE_BUILD_PACKAGES are the C compiler and libraries Fyne's cgo build
# needs (libc6-dev is only recommended by gcc, and so not installed with it
# under --no-install-recommends on a stock Debian).
FYNE_BUILD_PACKAGES="gcc libc6-dev pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev"

step() { printf '\n== %s ==\n' "$*"; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# need_apt installs the named packages that are missing.
need_apt() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	step "apt-get install ${missing[*]}"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# need_go puts a go command on PATH that can build this module. Debian's
# golang-go may be older than go.mod asks for: Go 1.21 and later fetch the
# right toolchain themselves (GOTOOLCHAIN=auto); older ones cannot even read
# go.mod, so the toolchain module is fetched for them from the Go module
# proxy, as the go command itself does, and its bin put first on PATH.
need_go() {
	export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
	if ! command -v go >/dev/null; then
		need_apt golang-go
	fi
	export GOTOOLCHAIN=auto
	local have
	have=$(cd / && go env GOVERSION)
	if go_older_than_1_21 "$have"; then
		fetch_go_toolchain "$(go_mod_toolchain)"
	fi
	go version
}

# go_mod_toolchain prints the toolchain go.mod asks for (go1.26.8): its
# toolchain line, or else its go line.
go_mod_toolchain() {
	local want
	want=$(sed -n 's/^toolchain \(go[0-9.]*\).*/\1/p' go.mod)
	if [ -z "$want" ]; then
		want=go$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
		# "go 1.26" names a language version; its first release is 1.26.0.
		case $want in go1.*.*) ;; *) want=$want.0 ;; esac
	fi
	echo "$want"
}

# go_older_than_1_21 tells whether a go version (go1.19.8) predates
# toolchain switching.
go_older_than_1_21() {
	local minor
	minor=$(echo "$1" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
	[ -n "$minor" ] && [ "$minor" -lt 21 ]
}

# fetch_go_toolchain downloads golang.org/toolchain@v0.0.1-<version>.<os>-<arch>
# into the module cache with the go command already there, checked against
# scripts/go-toolchain.sum (or the checksum database for a version not listed
# there), makes its commands executable (module zips keep no file modes) and
# puts its bin first on PATH.
fetch_go_toolchain() {
	local mod tmp out dir
	mod=golang.org/toolchain@v0.0.1-$1.$(cd / && go env GOOS)-$(cd / && go env GOARCH)
	step "go.mod needs $1; $(cd / && go env GOVERSION) cannot switch itself: fetching $mod"
	tmp=$(mktemp -d)
	printf 'module fetchgo\n\ngo 1.16\n' >"$tmp/go.mod"
	grep "^${mod%@*} ${mod#*@}[ /]" scripts/go-toolchain.sum >"$tmp/go.sum" || true
	out=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json "$mod" 2>&1) || true
	rm -rf "$tmp"
	dir=$(printf '%s\n' "$out" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
		echo "could not fetch $mod:" >&2
		printf '%s\n' "$out" >&2
		return 1
	fi
	find "$dir/bin" "$dir/pkg/tool" -type f ! -perm -u+x -exec chmod a+x {} +
	export PATH="$dir/bin:$PATH"
}
