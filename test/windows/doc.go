// Package windows proves the Windows installer by installing it: under
// Wine and Xvfb, the MSIs that scripts/build-windows makes are installed
// with msiexec, the installed programs are run and used as a person and an
// AI app would, then upgraded and removed. scripts/test-windows builds
// everything and runs it with COUNTERSIGN_WINE=1; without that it skips.
//
// packaging/windows/winetest/processprng.c is a test-only stand-in for a DLL Wine 8 lacks; it is
// copied into the throwaway Wine prefix and never shipped.
package windows
