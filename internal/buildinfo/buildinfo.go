// Package buildinfo holds the version every Countersign binary and
// installer carries. FyneApp.toml is the one place it is set; a test
// fails when this file disagrees with it.
package buildinfo

// Version is FyneApp.toml's Version. Packaging tests that need another
// version (an upgrade) set it with
// -ldflags "-X github.com/countersign/countersign/internal/buildinfo.Version=…".
var Version = "0.1.0"
