// Package langenv gives Fyne a language it can read when the locale is C
// or POSIX with a character set (LANG=C.UTF-8, common in containers and
// minimal installs). Fyne reads the language from LC_ALL, LC_MESSAGES or
// LANG while its packages initialise, takes "C.UTF-8" as the language
// "C", and prints "Fyne error: Error parsing user locale C". Plain "C" and
// "POSIX" it already treats as English.
//
// Import it for its effect, from main, before anything that imports Fyne:
// its package name sorts before Fyne's dependencies, so Go initialises it
// first (Go 1.21+ initialises ready packages in import-path order).
package langenv

import (
	"os"
	"runtime"
	"strings"
)

func init() {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return // the language comes from the OS there, not the environment
	}
	Fix(os.Getenv, os.Setenv)
}

// Fix sets LANGUAGE to "en" when the locale Fyne reads is C or POSIX with
// a character set or modifier and LANGUAGE is unset: C's messages are
// English. A real language is left alone.
func Fix(getenv func(string) string, setenv func(string, string) error) {
	var loc string
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if loc = getenv(v); loc != "" {
			break
		}
	}
	lang, _, _ := strings.Cut(loc, ".")
	lang, _, _ = strings.Cut(lang, "@")
	if loc == lang || (lang != "C" && lang != "POSIX") || getenv("LANGUAGE") != "" {
		return
	}
	setenv("LANGUAGE", "en")
}
