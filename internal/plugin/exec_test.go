package plugin

import (
	"testing"

	"github.com/plexus-cni/plexus/internal/delegexec"
)

// plexus in process runs its delegates so that they die with it (a
// runtime's timeout SIGKILLs plexus mid-ADD): not through libcni's RawExec,
// and not chrooted. delegexec's tests prove the dying.
func TestDefaultDelegatesDieWithPlexus(t *testing.T) {
	x, ok := Default().Exec.(*delegexec.Exec)
	if !ok {
		t.Fatalf("Default().Exec is %T, want *delegexec.Exec", Default().Exec)
	}
	if x.Root != "" || x.Stderr == nil {
		t.Errorf("Default().Exec = %+v, want no root and the plugin's stderr", x)
	}
}
