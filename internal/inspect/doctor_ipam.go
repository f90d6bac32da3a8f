package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// ipamConfPaths are the flat files plexus-ipam reads on this node, in its
// order: the one plexusd writes into the conf dir, then the binary's.
func ipamConfPaths(confDir string) []string {
	paths := []string{filepath.Join(confDir, "plexus-ipam.d", "plexus-ipam.conf")}
	for _, p := range config.DefaultLoader().DefaultPaths {
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	return paths
}

// ipamStoreKey identifies a store for reporting each one once.
func ipamStoreKey(c *config.Conf) string {
	if e := c.Etcd; e != nil {
		return "etcd " + strings.Join(e.Endpoints, ",")
	}
	ns := c.Namespace
	if ns == "" {
		ns = "the kubeconfig's namespace or " + config.DefaultNamespace
	}
	return fmt.Sprintf("kubernetes %s (namespace %s)", c.Kubeconfig, ns)
}

// ipamChecks finds the store of every plexus-ipam configuration as the
// plugin would on this node (the flat files merged in) and requires that
// one is named, its kubeconfig exists and the store answers (each store
// once).
func ipamChecks(ctx context.Context, configs []NetworkConfig, o DoctorOptions, add addFunc) {
	loader := config.Loader{Files: config.OSFiles{}, DefaultPaths: ipamConfPaths(o.ConfDir)}
	users := map[string][]string{}
	confs := map[string]*config.Conf{}
	for _, c := range configs {
		d, err := nad.Parse(c.Config, filepath.Base(c.Source))
		if err != nil {
			continue // delegateChecks reports it
		}
		var l struct {
			Plugins []json.RawMessage `json:"plugins"`
		}
		_ = json.Unmarshal(d.Conflist, &l) // nad.Parse produced it
		for _, p := range l.Plugins {
			var peek pluginPeek
			if json.Unmarshal(p, &peek) != nil || peek.IPAM.Type != config.TypePlexus {
				continue
			}
			conf, err := loader.Load(withName(p, d.Name, d.CNIVersion), config.Args{})
			switch {
			case err != nil:
				add(Fail, "ipam", c.Source, "plexus-ipam configuration: %v", err)
			case conf.Etcd == nil && conf.Kubeconfig == "":
				add(Fail, "ipam", c.Source, "plexus-ipam configuration names no store (kubernetes.kubeconfig, etcd_host or configuration_path) "+
					"and this node has no plexus-ipam defaults (%s): its ADD fails with code 7 unless plexusd serves it with its own credentials",
					strings.Join(loader.DefaultPaths, ", "))
			default:
				key := ipamStoreKey(conf)
				if !slices.Contains(users[key], c.Source) {
					users[key] = append(users[key], c.Source)
				}
				confs[key] = conf
			}
		}
	}
	for _, key := range sortedKeys(users) {
		used := "used by " + strings.Join(users[key], ", ")
		conf := confs[key]
		if conf.Etcd == nil {
			fileCheck(add, "ipam", conf.Kubeconfig, "plexus-ipam kubeconfig ("+used+")")
		}
		storeCheck(ctx, o, conf, key, used, add)
	}
}

// storeCheck opens the store and asks it to answer (bounded).
func storeCheck(ctx context.Context, o DoctorOptions, conf *config.Conf, key, used string, add addFunc) {
	if o.OpenIPAMStore == nil {
		add(Skip, "ipam store", key, "not checked (%s)", used)
		return
	}
	st, err := o.OpenIPAMStore(conf)
	if err != nil {
		add(Fail, "ipam store", key, "cannot open (%s): %v", used, err)
		return
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Ping(ctx); err != nil {
		add(Fail, "ipam store", key, "does not answer (%s): %v", used, err)
		return
	}
	add(OK, "ipam store", key, "answers (%s)", used)
}

// OpenIPAMStore is the signature of the function Doctor opens stores with
// (pkg/ipam/plugin's OpenStore in plexusctl).
type OpenIPAMStore func(c *config.Conf) (store.Store, error)
