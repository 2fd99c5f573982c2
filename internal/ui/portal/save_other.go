//go:build !linux

package portal

import "context"

// SaveFile returns ErrUnavailable: the XDG desktop portal is a Linux
// desktop's.
func SaveFile(context.Context, string, string) (string, error) {
	return "", ErrUnavailable
}
