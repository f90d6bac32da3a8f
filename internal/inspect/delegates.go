package inspect

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/pkg/nad"
)

// masterTypes are the plugins whose "master" is a host interface.
var masterTypes = []string{"macvlan", "ipvlan", "vlan"}

// delegateChecks requires a binary in binDir for every plugin and IPAM
// type the configs use, and every master interface on this node.
func delegateChecks(configs []NetworkConfig, binDir string, links Links, add addFunc) {
	users := map[string][]string{} // binary -> sources
	masters := map[string][]string{}
	users[nad.SelfType] = []string{"plexus itself"}
	for _, c := range configs {
		d, err := nad.Parse(c.Config, filepath.Base(c.Source))
		if err != nil {
			add(Fail, "network", c.Source, "invalid config: %v", err)
			continue
		}
		for _, p := range plugins(d.Conflist) {
			for _, t := range []string{p.Type, p.IPAM.Type} {
				if t != "" && !slices.Contains(users[t], c.Source) {
					users[t] = append(users[t], c.Source)
				}
			}
			if p.Master != "" && slices.Contains(masterTypes, p.Type) {
				masters[p.Master] = append(masters[p.Master], c.Source)
			}
		}
	}
	// plexus-ipam runs plexus-ipam-local when plexusd cannot take a
	// request (package reexec): it must be there too.
	if len(users["plexus-ipam"]) > 0 {
		users["plexus-ipam-local"] = []string{"plexus-ipam"}
	}
	for _, t := range sortedKeys(users) {
		path := filepath.Join(binDir, t)
		used := "used by " + strings.Join(users[t], ", ")
		if st, err := os.Stat(path); err != nil {
			add(Fail, "binary", path, "plugin binary missing (%s)", used)
		} else if st.Mode()&0o111 == 0 || st.IsDir() {
			add(Fail, "binary", path, "not an executable file (%s)", used)
		} else {
			add(OK, "binary", path, "present (%s)", used)
		}
	}
	for _, m := range sortedKeys(masters) {
		used := "master of " + strings.Join(masters[m], ", ")
		switch ok, err := links.LinkExists(m); {
		case err != nil:
			add(Fail, "interface", m, "cannot look up (%s): %v", used, err)
		case !ok:
			add(Fail, "interface", m, "not found on this node (%s)", used)
		default:
			add(OK, "interface", m, "present (%s)", used)
		}
	}
}

type pluginPeek struct {
	Type   string `json:"type"`
	Master string `json:"master"`
	IPAM   struct {
		Type string `json:"type"`
	} `json:"ipam"`
}

func plugins(conflist []byte) []pluginPeek {
	var l struct {
		Plugins []pluginPeek `json:"plugins"`
	}
	_ = json.Unmarshal(conflist, &l) // nad.Parse produced it
	return l.Plugins
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
