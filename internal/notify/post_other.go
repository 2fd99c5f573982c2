//go:build !linux

package notify

// Desktop sends native notifications with beeep.
type Desktop struct {
	appName string
	icon    []byte
}
