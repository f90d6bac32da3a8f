package ipamlog

import (
	"bytes"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/logging"
)

// Open takes every level name of internal/logging; an unknown one says
// so on stderr and logs errors only.
func TestOpenLevels(t *testing.T) {
	for _, name := range append(logging.LevelNames(), "loud") {
		var stderr bytes.Buffer
		log := Open(&stderr)(name, "")
		log.Debugf("a debug line")
		log.Errorf("an error line")
		if err := log.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		out := stderr.String()
		notice := strings.Contains(out, `plexus-ipam: ipam.log_level: unknown log level "loud"`)
		debug := strings.Contains(out, "a debug line")
		errLine := strings.Contains(out, "an error line")
		if notice != (name == "loud") || debug != (name == "debug") || errLine != (name != "panic") {
			t.Errorf("log_level %q: stderr %q", name, out)
		}
	}
}
