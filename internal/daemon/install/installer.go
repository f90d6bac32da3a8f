package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// Waiting says why ConfCurrent is false ("" when it is true); Reason
	// is its one-word kind (ReasonMetaPlugin, …) and File the
	// configuration file it is about, if any.
	Waiting, Reason, File string
	// Moved lists the Multus files the last take-over moved aside (only
	// in the State of the Sync that moved them).
	Moved string
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
	// TakeOverMultus: when Multus's configuration is in the conf dir,
	// wrap the network Multus wraps and move Multus's files aside
	// (otherwise plexus stays unready and writes nothing).
	TakeOverMultus bool
	Log            *logging.Logger
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
	d, moved, err := in.syncConf()
	switch {
	case err != nil:
		st.Waiting, st.Reason = err.Error(), "WriteFailed"
	case d.Primary == nil:
		st.Waiting, st.Reason, st.File = d.Message, d.Reason, d.File
	default:
		st.ConfCurrent = true
		st.Moved = strings.Join(moved, ", ")
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
	} else if st.Reason == ReasonMetaPlugin || st.Reason == ReasonShadowed || st.Reason == ReasonTakeOver {
		in.Log.Errorf("not ready (%s): %s", st.Reason, st.Waiting)
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

// syncConf decides what the conf dir calls for and does it: the plexus
// file first (atomically: from then on the runtime uses it), then the
// Multus files of a take-over moved aside. It returns the decision, the
// files moved, or an error.
func (in *Installer) syncConf() (Decision, []string, error) {
	if rf := in.ReadinessFile; rf != "" {
		if _, err := os.Stat(rf); err != nil {
			return blocked(ReasonWaitingReady, rf, "waiting for the readiness indicator file %s", rf), nil, nil
		}
	}
	entries, err := ReadEntries(in.Conf.Dir)
	if err != nil {
		return Decision{}, nil, err
	}
	d := Decide(entries, in.Conf.Name, in.TakeOverMultus)
	if d.Primary == nil {
		return d, nil, nil
	}
	data, err := Render(in.Conf, d.Primary)
	if err != nil {
		return d, nil, err
	}
	if !sameContent(in.Conf.Path(), data) {
		if err := writeAtomic(in.Conf.Path(), data, 0o600); err != nil {
			return d, nil, err
		}
		in.Log.Infof("wrote %s wrapping %s", in.Conf.Path(), d.Primary.describe())
	}
	var moved []string
	for _, name := range d.MoveAside {
		to, err := moveAside(in.Conf.Dir, name)
		if err != nil {
			return d, moved, err
		}
		in.Log.Infof("took over from Multus: moved %s to %s (rename it back to roll back)", name, filepath.Base(to))
		moved = append(moved, name)
	}
	return d, moved, nil
}

// moveAside renames a Multus file of dir to a free name ending in
// MovedSuffix, in the same directory (an atomic rename).
func moveAside(dir, name string) (string, error) {
	from := filepath.Join(dir, name)
	for i := 1; i <= 100; i++ {
		to := from + MovedSuffix
		if i > 1 {
			to = fmt.Sprintf("%s.%d%s", from, i, MovedSuffix)
		}
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		if err := os.Rename(from, to); err != nil {
			return "", fmt.Errorf("move Multus's %s aside: %w", from, err)
		}
		return to, syncDir(dir)
	}
	return "", fmt.Errorf("move Multus's %s aside: 100 moved copies exist already; remove the old ones", from)
}

// describe names the network a Primary stands for, for logs.
func (p *Primary) describe() string {
	if p.Path != "" {
		return p.Path
	}
	if v, ok := p.Extra["clusterNetwork"]; ok {
		return "clusterNetwork " + string(v) + " (from Multus)"
	}
	return "Multus's delegates[0]"
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

// Moved is a Multus file that a take-over moved aside.
type Moved struct {
	// Path is where it is now, Original where it was (renaming it back
	// is the rollback).
	Path, Original string
}

// MovedAside lists the Multus files a take-over moved aside in dir.
func MovedAside(dir string) ([]Moved, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read conf dir %s: %w", dir, err)
	}
	var out []Moved
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), MovedSuffix)
		if !ok || e.IsDir() {
			continue
		}
		if ext := filepath.Ext(name); ext != "" && !isConfName(name) { // 00-multus.conf.2 → 00-multus.conf
			name = strings.TrimSuffix(name, ext)
		}
		out = append(out, Moved{Path: filepath.Join(dir, e.Name()), Original: filepath.Join(dir, name)})
	}
	return out, nil
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
