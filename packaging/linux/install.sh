#!/usr/bin/env bash
# Installs a built Countersign for the current user on Linux, without root
# and without a package manager (other distributions, or trying a build):
# ~/.local/bin/{countersign,countersign-bridge}, the desktop entry and icon.
# On Debian and Ubuntu, install the package instead (scripts/build-deb).
#   packaging/linux/install.sh [DIR-WITH-BINARIES]   (default: .bin)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$top/.bin}
for b in countersign countersign-bridge; do
	[ -x "$bin/$b" ] || { echo "missing $bin/$b: run scripts/run or go build first" >&2; exit 1; }
done
install -Dm755 "$bin/countersign" "$HOME/.local/bin/countersign"
install -Dm755 "$bin/countersign-bridge" "$HOME/.local/bin/countersign-bridge"
install -Dm644 "$top/packaging/linux/countersign.desktop" "$HOME/.local/share/applications/countersign.desktop"
install -Dm644 "$top/assets/icon.png" "$HOME/.local/share/icons/hicolor/512x512/apps/countersign.png"
echo "installed to ~/.local/bin: start Countersign from the applications menu (it lives in the tray); AI apps can start 'countersign-bridge <server-id>'"
