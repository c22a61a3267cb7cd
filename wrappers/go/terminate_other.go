//go:build !unix

package jobvisor

import (
	"os"
	"strconv"
)

// Terminate stops the job and exits with code: the default Options.Exit. Where there
// are no process groups, only this process exits.
func Terminate(code int, err error) {
	say(err.Error() + "; stopping the job (exit " + strconv.Itoa(code) + ")")
	os.Exit(code)
}
