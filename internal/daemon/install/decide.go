package install

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Kind classifies a configuration file of the runtime's conf dir.
type Kind int

// The kinds of configuration files.
const (
	// KindNetwork is a plain network: the one plexus may wrap.
	KindNetwork Kind = iota
	// KindMultus is Multus (type multus or multus-shim): a meta-plugin
	// that plexus never wraps; a take-over moves it aside.
	KindMultus
	// KindSelf is plexus itself, or a configuration delegating to plexus.
	KindSelf
	// KindUnreadable cannot be read or decoded.
	KindUnreadable
)

// TakeOverConfName is plexus's file name under takeOverMultus unless
// confName says otherwise: it sorts before Multus's 00-multus.conf.
const TakeOverConfName = "00-00-plexus.conflist"

// MultusTypes are the plugin types of Multus's configuration files.
var MultusTypes = []string{"multus", "multus-shim"}

// The reasons a Decision gives when there is nothing to write; they are
// also the reasons of the events plexusd records on its Node.
const (
	ReasonMetaPlugin   = "PrimaryIsMetaPlugin"
	ReasonShadowed     = "ConfShadowed"
	ReasonTakeOver     = "MultusTakeOverBlocked"
	ReasonNoPrimary    = "NoPrimary"
	ReasonUnreadable   = "PrimaryUnreadable"
	ReasonWaitingReady = "WaitingForReadinessIndicator"
)

// Entry is one configuration file of the conf dir, read and classified.
type Entry struct {
	Name string
	Kind Kind
	// Type is the first plugin type of the file (for messages).
	Type string
	// Err says why a KindUnreadable file is unusable.
	Err error
	// Primary is the network a KindNetwork file describes.
	Primary *Primary
	// Multus is what a take-over keeps of a KindMultus file.
	Multus *MultusConf
	// Moved: a Multus file that a take-over moved aside (name ending in
	// MovedSuffix). The runtime ignores it; a take-over still wraps the
	// network it names.
	Moved bool
}

// MultusConf is the part of a Multus configuration a take-over carries
// over: the network Multus wraps, and Multus's keys that plexus reads with
// the same meaning.
type MultusConf struct {
	// Target is the file its clusterNetwork names, read and classified;
	// nil when clusterNetwork is not the path of a file.
	Target *Entry
	// Keys are the carried keys (see carriedKeys), clusterNetwork only when
	// it is not a path (a NAD or network name, resolved by plexus as by
	// Multus).
	Keys         map[string]json.RawMessage
	CNIVersion   string
	Capabilities map[string]bool
	// WrapsSelf: its delegate is plexus (Multus wrapped plexus's file).
	WrapsSelf bool
}

// carriedKeys are Multus's keys that a take-over copies into the plexus
// configuration: plexus reads them with Multus's meaning (internal/config).
// Multus's kubeconfig, cniDir and binDir are not carried: plexus keeps its
// own.
var carriedKeys = []string{"clusterNetwork", "delegates", "defaultNetworks", "namespaceIsolation",
	"globalNamespaces", "systemNamespaces", "multusNamespace", "confDir", "readinessindicatorfile"}

// Decision is what the conf dir calls for.
type Decision struct {
	// Primary is the network to wrap (nil when there is nothing to write).
	Primary *Primary
	// MoveAside are the Multus files to rename aside once the plexus file
	// is in place (a take-over).
	MoveAside []string
	// Reason, File and Message say why there is nothing to write.
	Reason, File, Message string
}

// Decide picks what plexus wraps from the conf dir's entries, in the
// runtime's order (file name), given the name of plexus's own file. The
// runtime uses the first file, so plexus is in use only when its own file
// comes first: any other file before it is reported (ReasonShadowed), as is
// a Multus file anywhere (ReasonMetaPlugin): plexus never wraps another
// meta-plugin nor itself. With takeOver, Multus files are instead moved
// aside and plexus wraps the network Multus wrapped; plexus's file must
// then sort before Multus's, so that a file Multus writes back is never
// used.
func Decide(entries []Entry, own string, takeOver bool) Decision {
	var live, moved, multus []Entry
	for _, e := range sortedWithout(entries, own) {
		switch {
		case e.Moved:
			moved = append(moved, e)
		case e.Kind == KindMultus:
			multus = append(multus, e)
			live = append(live, e)
		default:
			live = append(live, e)
		}
	}
	entries = live
	for _, e := range entries {
		if e.Name >= own {
			break
		}
		if e.Kind == KindMultus && takeOver {
			return blocked(ReasonTakeOver, e.Name, "%s sorts before %s: the runtime would use a Multus file that Multus writes back; "+
				"set confName to a name that sorts first (with takeOverMultus the default is %s)", e.Name, own, TakeOverConfName)
		}
		if e.Kind == KindMultus {
			return metaPlugin(e, own)
		}
		return blocked(ReasonShadowed, e.Name, "%s (type %q) sorts before %s: the runtime uses it, not plexus; "+
			"remove it or set confName to a name that sorts first", e.Name, e.Type, own)
	}
	if len(multus) > 0 && !takeOver {
		return metaPlugin(multus[0], own)
	}
	d := Decision{}
	for _, m := range multus {
		d.MoveAside = append(d.MoveAside, m.Name)
	}
	if takeOver {
		// What Multus wrapped, from its live files, then from those moved
		// aside earlier (so that the wrapped network stays the same).
		for _, m := range append(multus, moved...) {
			if d.Primary = m.Multus.delegate(); d.Primary != nil {
				return d
			}
		}
	}
	for _, e := range entries {
		switch e.Kind {
		case KindNetwork:
			d.Primary = e.Primary
			return d
		case KindUnreadable:
			return blocked(ReasonUnreadable, e.Name, "waiting for a usable primary CNI configuration: %v", e.Err)
		}
	}
	return blocked(ReasonNoPrimary, "", "waiting for a usable primary CNI configuration: %v", ErrNoPrimary)
}

func metaPlugin(e Entry, own string) Decision {
	return blocked(ReasonMetaPlugin, e.Name, "%s is Multus (type %q) and the runtime uses it, not plexus: plexusd never wraps "+
		"another meta-plugin and writes no %s; to switch this node from Multus set takeOverMultus (docs/migrate-multus.md)",
		e.Name, e.Type, own)
}

func blocked(reason, file, format string, args ...any) Decision {
	return Decision{Reason: reason, File: file, Message: fmt.Sprintf(format, args...)}
}

func sortedWithout(entries []Entry, own string) []Entry {
	out := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if e.Name != own {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// delegate returns the network Multus wraps, with Multus's carried keys,
// or nil when it names no usable one (then the first plain network of the
// conf dir is what Multus's own "auto" mode would pick).
func (m *MultusConf) delegate() *Primary {
	if m == nil || m.WrapsSelf {
		return nil
	}
	extra := map[string]json.RawMessage{}
	for k, v := range m.Keys {
		extra[k] = v
	}
	if m.Target != nil {
		if m.Target.Kind != KindNetwork {
			return nil
		}
		p := *m.Target.Primary
		delete(extra, "delegates") // Multus ignores delegates when clusterNetwork is set
		p.Extra = extra
		return &p
	}
	if len(extra["clusterNetwork"]) == 0 && len(extra["delegates"]) == 0 {
		return nil
	}
	if len(extra["clusterNetwork"]) > 0 {
		delete(extra, "delegates")
	}
	return &Primary{CNIVersion: m.CNIVersion, Capabilities: m.Capabilities, Extra: extra}
}

// isMultusType reports whether t is one of MultusTypes.
func isMultusType(t string) bool {
	for _, m := range MultusTypes {
		if strings.EqualFold(t, m) {
			return true
		}
	}
	return false
}
