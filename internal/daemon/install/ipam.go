package install

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names plexus-ipam looks for in its configuration directory
// (pkg/ipam/config DefaultLoader, README, docs/ipam.md).
const (
	IPAMConfName       = "plexus-ipam.conf"
	IPAMKubeconfigName = "plexus-ipam.kubeconfig"
)

// IPAMDefaults says what plexusd writes so that a NAD whose plexus-ipam
// configuration names no store (no kubernetes.kubeconfig, no etcd_host)
// works: the flat configuration file plexus-ipam merges under every
// configuration, naming a kubeconfig.
type IPAMDefaults struct {
	// Dir receives IPAMConfName and, when Kubeconfig is set,
	// IPAMKubeconfigName (both mode 0600).
	Dir string
	// Kubeconfig, when set, is rendered (from the service account) into
	// Dir/IPAMKubeconfigName, and the flat file names that. Its Path is
	// ignored.
	Kubeconfig *KubeconfigOptions
	// KubeconfigPath is named in the flat file when Kubeconfig is nil (an
	// existing kubeconfig, e.g. plexusd's own outside a cluster). With
	// neither, nothing is written.
	KubeconfigPath string
}

// ConfPath is the flat file's path.
func (d IPAMDefaults) ConfPath() string { return filepath.Join(d.Dir, IPAMConfName) }

// KubeconfigFile is the kubeconfig the flat file names ("" for none).
func (d IPAMDefaults) KubeconfigFile() string {
	if d.Kubeconfig != nil {
		return filepath.Join(d.Dir, IPAMKubeconfigName)
	}
	return d.KubeconfigPath
}

// RenderIPAMConf returns the flat file naming kubeconfig.
func RenderIPAMConf(kubeconfig string) []byte {
	b, _ := json.Marshal(map[string]any{"kubernetes": map[string]string{"kubeconfig": kubeconfig}}) // strings always marshal
	return append(b, '\n')
}

// syncIPAM writes the kubeconfig, then the flat file naming it, so that
// the flat file never names a kubeconfig that is not there yet.
func (in *Installer) syncIPAM() error {
	d := in.IPAM
	if d == nil || d.Dir == "" {
		return nil
	}
	kc := d.KubeconfigFile()
	if kc == "" {
		return nil
	}
	if d.Kubeconfig != nil {
		o := *d.Kubeconfig
		o.Path = kc
		if err := in.writeKubeconfig(o); err != nil {
			return err
		}
	}
	if err := in.writeFile(d.ConfPath(), RenderIPAMConf(kc), "plexus-ipam configuration"); err != nil {
		return err
	}
	return nil
}

// writeKubeconfig renders o into o.Path when its content changed.
func (in *Installer) writeKubeconfig(o KubeconfigOptions) error {
	data, err := RenderKubeconfig(o)
	if err != nil {
		return err
	}
	return in.writeFile(o.Path, data, "kubeconfig")
}

// writeFile replaces path with data (0600, its directory created 0700)
// unless it already holds exactly data; what names it in the log.
func (in *Installer) writeFile(path string, data []byte, what string) error {
	if sameContent(path, data) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%s directory %s: %w", what, filepath.Dir(path), err)
	}
	if err := writeAtomic(path, data, 0o600); err != nil {
		return err
	}
	in.Log.Infof("%s %s written", what, path)
	return nil
}

// WhereaboutsName is the binary name NADs written for Whereabouts ask for.
const WhereaboutsName = "whereabouts"

// ErrForeignBinary means a file plexusd would replace is not plexus's.
var ErrForeignBinary = errors.New("not a plexus binary")

// Alias installs plexus-ipam under a second name (the opt-in that serves
// NADs still saying "type": "whereabouts"), and the kubeconfig such NADs
// usually name, but never over a file that is not plexus's: a real
// Whereabouts stays untouched and the alias is reported as refused.
type Alias struct {
	// Source is the installed plexus-ipam; Target the alias path.
	Source, Target string
	// Kubeconfig, when set, is rendered at its Path too (Whereabouts'
	// kubeconfig path, which its NADs often name).
	Kubeconfig *KubeconfigOptions
	// Owned reports whether an existing file is plexus's (default
	// PlexusBinary).
	Owned func(path string) (bool, error)
}

// syncAlias keeps the alias a copy of its source; a foreign file at the
// target is an error wrapping ErrForeignBinary and nothing is written.
func (in *Installer) syncAlias() error {
	a := in.Alias
	if a == nil {
		return nil
	}
	owned := a.Owned
	if owned == nil {
		owned = PlexusBinary
	}
	if _, err := os.Lstat(a.Target); err == nil {
		ours, err := owned(a.Target)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Target, err)
		}
		if !ours {
			return fmt.Errorf("%s exists and is %w (Whereabouts is installed on this node?): not replaced, "+
				"NADs of type %q keep using it; remove Whereabouts first or turn whereaboutsAlias off", a.Target, ErrForeignBinary, WhereaboutsName)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", a.Target, err)
	}
	changed, err := installBinary(a.Source, a.Target)
	if err != nil {
		return fmt.Errorf("alias %s of %s: %w", a.Target, a.Source, err)
	}
	if changed {
		in.Log.Infof("installed %s as %s (NADs of type %q run plexus-ipam)", a.Source, a.Target, WhereaboutsName)
	}
	if a.Kubeconfig != nil {
		return in.writeKubeconfig(*a.Kubeconfig)
	}
	return nil
}

// modulePath is plexus's Go module, recorded in every binary built from it.
const modulePath = "github.com/plexus-cni/plexus"

// PlexusBinary reports whether path is a Go binary built from plexus's
// module (any version): plexusd may replace it. Anything else (another
// project's binary, a script, an unreadable build record) is not.
func PlexusBinary(path string) (bool, error) {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return false, err
		}
		return false, nil
	}
	return info.Main.Path == modulePath, nil
}

func (in *Installer) ipamKubeconfig() *KubeconfigOptions {
	if in.IPAM == nil {
		return nil
	}
	return in.IPAM.Kubeconfig
}

func (in *Installer) aliasKubeconfig() *KubeconfigOptions {
	if in.Alias == nil {
		return nil
	}
	return in.Alias.Kubeconfig
}
