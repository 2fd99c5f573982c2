//go:build !windows && !(linux && cgo && !wayland)

package attention

// request does nothing: this platform or build has no attention mark
// Countersign can set (macOS comes with its own build).
func request(any) {}
