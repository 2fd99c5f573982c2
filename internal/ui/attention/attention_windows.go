//go:build windows

package attention

import (
	"syscall"
	"unsafe"

	"fyne.io/fyne/v2/driver"
)

var flashWindowEx = syscall.NewLazyDLL("user32.dll").NewProc("FlashWindowEx")

// flashInfo is FLASHWINFO.
type flashInfo struct {
	size    uint32
	hwnd    uintptr
	flags   uint32
	count   uint32
	timeout uint32
}

const (
	flashAll        = 0x3 // FLASHW_ALL: the caption and the taskbar button
	flashUntilFront = 0xc // FLASHW_TIMERNOFG: until the window comes to the front
)

// request flashes the window's taskbar button until the person brings it
// to the front; Windows does nothing for a window already in front.
func request(ctx any) {
	w, ok := ctx.(driver.WindowsWindowContext)
	if !ok || w.HWND == 0 {
		return
	}
	fi := flashInfo{hwnd: w.HWND, flags: flashAll | flashUntilFront}
	fi.size = uint32(unsafe.Sizeof(fi))
	flashWindowEx.Call(uintptr(unsafe.Pointer(&fi)))
}
