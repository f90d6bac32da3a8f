package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/plexus-cni/plexus/internal/logging"
)

// DefaultResync is the safety-net period of Run's full re-check.
const DefaultResync = 30 * time.Second

// State is what the last Sync found.
type State struct {
	// ConfCurrent: the configuration file is in place and wraps the
	// current primary.
	ConfCurrent bool
	// Waiting says why ConfCurrent is false ("" when it is true).
	Waiting string
	// KubeconfigError is the last failure to write the kubeconfig ("" when
	// it is current or not managed).
	KubeconfigError string
	// IPAMError is the last failure to write plexus-ipam's defaults, and
	// AliasError the last failure (or refusal) of the whereabouts alias
	// ("" when current or not managed).
	IPAMError  string
	AliasError string
}

// Ready reports whether the node is fully set up for plexus.
func (s State) Ready() bool {
	return s.ConfCurrent && s.KubeconfigError == "" && s.IPAMError == "" && s.AliasError == ""
}

// Installer keeps the configuration file and the kubeconfig current. It
// never removes the configuration file (only Uninstall does): once written,
// a wrapping of the last good primary stays until a new good one appears.
type Installer struct {
	Conf ConfOptions
	// Kubeconfig, when set, is written from the service account's files.
	Kubeconfig *KubeconfigOptions
	// IPAM, when set, says where plexus-ipam's defaults are written.
	IPAM *IPAMDefaults
	// Alias, when set, installs plexus-ipam as "whereabouts" too.
	Alias *Alias
	// ReadinessFile, when set, must exist before the configuration is
	// first written or rewritten.
	ReadinessFile string
	Log           *logging.Logger
	// OnChange is called after a Sync whose State differs from the last.
	OnChange func(State)

	mu    sync.Mutex // guards state
	state State
}

// State returns the result of the last Sync.
func (in *Installer) State() State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

// Sync brings the kubeconfig and the configuration file up to date once.
func (in *Installer) Sync() State {
	var st State
	if err := in.syncKubeconfig(); err != nil {
		st.KubeconfigError = err.Error()
	}
	if err := in.syncIPAM(); err != nil {
		st.IPAMError = err.Error()
	}
	if err := in.syncAlias(); err != nil {
		st.AliasError = err.Error()
	}
	waiting, err := in.syncConf()
	switch {
	case err != nil:
		st.Waiting = err.Error()
	case waiting != "":
		st.Waiting = waiting
	default:
		st.ConfCurrent = true
	}
	in.mu.Lock()
	changed := st != in.state
	in.state = st
	in.mu.Unlock()
	if changed {
		in.report(st)
	}
	return st
}

func (in *Installer) report(st State) {
	if st.ConfCurrent {
		in.Log.Infof("CNI configuration %s is current", in.Conf.Path())
	} else {
		in.Log.Errorf("CNI configuration %s not written: %s (an existing one stays in place)", in.Conf.Path(), st.Waiting)
	}
	if st.KubeconfigError != "" {
		in.Log.Errorf("plugin kubeconfig not written: %s", st.KubeconfigError)
	}
	if st.IPAMError != "" {
		in.Log.Errorf("plexus-ipam defaults not written: %s", st.IPAMError)
	}
	if st.AliasError != "" {
		in.Log.Errorf("whereabouts alias not installed: %s", st.AliasError)
	}
	if in.OnChange != nil {
		in.OnChange(st)
	}
}

func (in *Installer) syncKubeconfig() error {
	if in.Kubeconfig == nil {
		return nil
	}
	data, err := RenderKubeconfig(*in.Kubeconfig)
	if err != nil {
		return err
	}
	return in.writeFile(in.Kubeconfig.Path, data, "plugin kubeconfig")
}

// syncConf returns why the file cannot be made current, or an error.
func (in *Installer) syncConf() (waiting string, err error) {
	if rf := in.ReadinessFile; rf != "" {
		if _, err := os.Stat(rf); err != nil {
			return fmt.Sprintf("waiting for the readiness indicator file %s", rf), nil
		}
	}
	p, err := FindPrimary(in.Conf.Dir, in.Conf.Name)
	if errors.Is(err, ErrNoPrimary) || errors.Is(err, ErrUnreadablePrimary) {
		return "waiting for a usable primary CNI configuration: " + err.Error(), nil
	}
	if err != nil {
		return "", err
	}
	data, err := Render(in.Conf, p)
	if err != nil {
		return "", err
	}
	if sameContent(in.Conf.Path(), data) {
		return "", nil
	}
	if err := writeAtomic(in.Conf.Path(), data, 0o600); err != nil {
		return "", err
	}
	in.Log.Infof("wrote %s wrapping %s", in.Conf.Path(), p.Path)
	return "", nil
}

// Uninstall removes the configuration file: the runtime uses the primary
// again. The binaries, records and kubeconfig stay, so that the sandboxes
// plexus set up can still be deleted.
func (in *Installer) Uninstall() error {
	if err := os.Remove(in.Conf.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", in.Conf.Path(), err)
	}
	return syncDir(in.Conf.Dir)
}

// Run syncs now, then on every change in the watched directories and every
// resync period, until ctx ends. It never removes the configuration file.
func (in *Installer) Run(ctx context.Context, resync time.Duration) error {
	if resync <= 0 {
		resync = DefaultResync
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", in.Conf.Dir, err)
	}
	defer w.Close()
	watched := map[string]bool{}
	in.watch(w, watched)
	in.Sync()
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Events:
			in.Sync()
		case err := <-w.Errors:
			in.Log.Errorf("watching for configuration changes: %v", err)
		case <-tick.C:
			in.watch(w, watched)
			in.Sync()
		}
	}
}

// watch adds the directories not watched yet; missing ones are retried at
// the next resync.
func (in *Installer) watch(w *fsnotify.Watcher, watched map[string]bool) {
	dirs := []string{in.Conf.Dir}
	if in.ReadinessFile != "" {
		dirs = append(dirs, filepath.Dir(in.ReadinessFile))
	}
	for _, k := range []*KubeconfigOptions{in.Kubeconfig, in.ipamKubeconfig(), in.aliasKubeconfig()} {
		if k != nil {
			dirs = append(dirs, filepath.Dir(k.TokenFile), filepath.Dir(k.CAFile))
		}
	}
	for _, d := range dirs {
		if watched[d] {
			continue
		}
		if err := w.Add(d); err != nil {
			in.Log.Debugf("cannot watch %s yet (%v); checking it every resync", d, err)
			continue
		}
		watched[d] = true
	}
}
