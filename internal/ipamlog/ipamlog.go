// Package ipamlog is how plexus-ipam logs a request, in its own process
// (plexus-ipam-local) and in plexusd alike.
package ipamlog

import (
	"fmt"
	"io"

	"github.com/plexus-cni/plexus/internal/logging"
	"github.com/plexus-cni/plexus/pkg/ipam/plugin"
)

// Open returns how plexus-ipam opens the log of a request, in its own
// process and in plexusd alike: at the configuration's log_level (an
// unknown name is said on stderr and only errors are logged, as under
// Whereabouts) to its log_file and to stderr.
func Open(stderr io.Writer) func(level, file string) plugin.Logger {
	return func(level, file string) plugin.Logger {
		lv, err := logging.ParseLevel(level)
		if err != nil {
			fmt.Fprintf(stderr, "plexus-ipam: ipam.log_level: %v; logging errors only\n", err)
		}
		return logging.New(logging.Options{Level: lv, File: file, Stderr: stderr, Prefix: "plexus-ipam: "})
	}
}
