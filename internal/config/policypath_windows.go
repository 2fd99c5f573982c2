package config

import "golang.org/x/sys/windows"

// programData is the machine-wide data folder, asked of Windows itself rather
// than read from %ProgramData%, which the person could change for their own
// processes to point Countersign at a policy of their choosing.
func programData() string {
	if p, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0); err == nil && p != "" {
		return p
	}
	return `C:\ProgramData`
}
