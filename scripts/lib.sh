# Shared helpers for the scripts: install missing Debian packages and make
# sure a Go toolchain is there (go.mod names the exact version; the go
# command fetches it from the module proxy when the local one is older).

# FYNE_BUILD_PACKAGES are the C libraries Fyne's cgo build needs.
FYNE_BUILD_PACKAGES="gcc pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev"

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

# need_go puts a go command on PATH; GOTOOLCHAIN=auto fetches the version
# go.mod asks for.
need_go() {
	export PATH="$PATH:/usr/local/go/bin:$HOME/go/bin"
	if ! command -v go >/dev/null; then
		need_apt golang-go
	fi
	export GOTOOLCHAIN=auto
	go version
}
