package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// IPAMPool is one address space of one plexus-ipam store.
type IPAMPool struct {
	// Name is the network_name ("default" when empty), with "@<CIDR>"
	// for a range of its own (enable_overlapping_ranges false).
	Name  string `json:"name"`
	Store string `json:"store"`
	Space string `json:"space"`
	// Ranges and Networks come from the NADs that use the space.
	Ranges   []string `json:"ranges,omitempty"`
	Networks []string `json:"networks,omitempty"`
	// Size is how many addresses the ranges hand out (0: unknown).
	Size     uint64 `json:"size"`
	Used     int    `json:"used"`
	Reserved int    `json:"reserved"`
	// Free is Size minus used and reserved (absent when Size is unknown).
	Free *uint64 `json:"free,omitempty"`
	// Indexed is what the space's index counts.
	Indexed uint64 `json:"indexed"`

	ranges map[string]*alloc.Range
	allocs []store.Allocation
	st     store.Store
}

// IPAMOptions select the NADs and stores read.
type IPAMOptions struct {
	// NADNamespace limits the NADs read ("": every namespace).
	NADNamespace string
	// Namespaces of Kubernetes stores read besides those the NADs name
	// (nil: kube-system, plexus-ipam's default).
	Namespaces []string
}

// PoolName names a space for display and for `ipam show`.
func PoolName(space string) string { return config.SpaceName(space) }

// ipamStore is one store and the spaces the NADs put in it.
type ipamStore struct {
	name   string
	st     store.Store
	spaces map[string]*IPAMPool
}

// IPAMPools reads every plexus-ipam store the NADs use (and kube-system
// or o.Namespaces)
// and returns their spaces, sorted by store and name. Close them with
// CloseIPAM.
func IPAMPools(ctx context.Context, c Cluster, o IPAMOptions) ([]*IPAMPool, error) {
	stores, err := ipamStores(ctx, c, o)
	if err != nil {
		return nil, err
	}
	var out []*IPAMPool
	for _, s := range stores {
		pools, err := s.read(ctx)
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", s.name, err)
		}
		out = append(out, pools...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Store < out[j].Store || out[i].Store == out[j].Store && out[i].Name < out[j].Name
	})
	return out, nil
}

// ipamStores opens the stores: one per kubernetes.namespace and one per
// etcd_host of the NADs' plexus-ipam configurations, plus kube-system and
// o.Namespaces.
func ipamStores(ctx context.Context, c Cluster, o IPAMOptions) ([]*ipamStore, error) {
	byName := map[string]*ipamStore{}
	var order []string
	get := func(name string, open func() (store.Store, error)) (*ipamStore, error) {
		if s, ok := byName[name]; ok {
			return s, nil
		}
		st, err := open()
		if err != nil {
			return nil, err
		}
		s := &ipamStore{name: name, st: st, spaces: map[string]*IPAMPool{}}
		byName[name] = s
		order = append(order, name)
		return s, nil
	}
	kube := func(ns string) (*ipamStore, error) {
		return get("kubernetes/"+ns, func() (store.Store, error) {
			return kubestore.New(c.Config, kubestore.Options{Namespace: ns})
		})
	}
	extra := o.Namespaces
	if extra == nil {
		extra = []string{config.DefaultNamespace}
	}
	for _, ns := range extra {
		if _, err := kube(ns); err != nil {
			return nil, err
		}
	}
	confs, err := ipamConfs(ctx, c, o.NADNamespace)
	if err != nil {
		return nil, err
	}
	for _, nc := range confs {
		var s *ipamStore
		if e := nc.conf.Etcd; e != nil {
			s, err = get("etcd/"+strings.Join(e.Endpoints, ","), func() (store.Store, error) {
				return etcdstore.New(etcdstore.Options{Endpoints: e.Endpoints, Username: e.Username, Password: e.Password,
					CertFile: e.CertFile, KeyFile: e.KeyFile, CACertFile: e.CACertFile})
			})
		} else {
			ns := nc.conf.Namespace
			if ns == "" {
				ns = config.DefaultNamespace
			}
			s, err = kube(ns)
		}
		if err != nil {
			return nil, err
		}
		s.addConf(nc)
	}
	out := make([]*ipamStore, 0, len(order))
	for _, n := range order {
		out = append(out, byName[n])
	}
	return out, nil
}

// nadConf is one plexus-ipam configuration of a NAD.
type nadConf struct {
	nad  string // namespace/name
	conf *config.Conf
}

// ipamConfs parses the plexus-ipam configurations of every NAD; NADs
// that do not parse are skipped (lint and describe report them).
func ipamConfs(ctx context.Context, c Cluster, ns string) ([]nadConf, error) {
	all, err := IPAMConfigs(ctx, c, ns)
	if err != nil {
		return nil, err
	}
	var out []nadConf
	for _, ic := range all {
		if ic.Err == nil {
			out = append(out, nadConf{nad: ic.NAD, conf: ic.Conf})
		}
	}
	return out, nil
}

// IPAMConfig is one IPAM configuration of type plexus-ipam or whereabouts
// of a NAD, as plexus-ipam reads it (without the node's flat files), or
// why it cannot.
type IPAMConfig struct {
	// NAD is "namespace/name".
	NAD  string
	Conf *config.Conf
	Err  error
}

// IPAMConfigs reads the plexus-ipam and whereabouts configurations of the
// NADs of ns ("" for all). NADs whose config does not parse at all are
// skipped (lint and describe report them).
func IPAMConfigs(ctx context.Context, c Cluster, ns string) ([]IPAMConfig, error) {
	var out []IPAMConfig
	err := eachNAD(ctx, c, ns, func(u *unstructured.Unstructured) error {
		out = append(out, nadIPAMConfigs(u)...)
		return nil
	})
	return out, err
}

// nadIPAMConfigs parses the plexus-ipam and whereabouts configurations of
// one NAD.
func nadIPAMConfigs(u *unstructured.Unstructured) []IPAMConfig {
	raw, _, _ := unstructured.NestedString(u.Object, "spec", "config")
	d, err := nad.Parse([]byte(raw), u.GetName())
	if strings.TrimSpace(raw) == "" || err != nil {
		return nil
	}
	var l struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if json.Unmarshal(d.Conflist, &l) != nil {
		return nil
	}
	var out []IPAMConfig
	for _, p := range l.Plugins {
		var peek pluginPeek
		if json.Unmarshal(p, &peek) != nil || (peek.IPAM.Type != config.TypePlexus && peek.IPAM.Type != config.TypeWhereabouts) {
			continue
		}
		conf, err := config.Loader{Files: noFiles{}}.Load(withName(p, l.Name, l.CNIVersion), config.Args{})
		out = append(out, IPAMConfig{NAD: u.GetNamespace() + "/" + u.GetName(), Conf: conf, Err: err})
	}
	return out
}

// addConf records the spaces, ranges and NAD of a configuration.
func (s *ipamStore) addConf(nc nadConf) {
	for _, slot := range nc.conf.Slots {
		for _, r := range slot.Ranges {
			p := s.pool(nc.conf.Space(r))
			p.ranges[r.First.String()+"-"+r.Last.String()] = r
			if !slices.Contains(p.Networks, nc.nad) {
				p.Networks = append(p.Networks, nc.nad)
			}
		}
	}
}

func (s *ipamStore) pool(space string) *IPAMPool {
	p, ok := s.spaces[space]
	if !ok {
		p = &IPAMPool{Name: PoolName(space), Store: s.name, Space: space, ranges: map[string]*alloc.Range{}, st: s.st}
		s.spaces[space] = p
	}
	return p
}

// read lists the store's allocations and index summaries into its pools.
func (s *ipamStore) read(ctx context.Context) ([]*IPAMPool, error) {
	infos, err := s.st.Spaces(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		s.pool(in.Space).Indexed = in.Allocated
	}
	allocs, err := s.st.List(ctx, store.Filter{})
	if err != nil {
		return nil, err
	}
	for _, a := range allocs {
		p := s.pool(a.Space)
		p.allocs = append(p.allocs, a)
		if a.Reserved() {
			p.Reserved++
		} else {
			p.Used++
		}
	}
	var out []*IPAMPool
	for _, p := range s.spaces {
		p.finish()
		out = append(out, p)
	}
	return out, nil
}

// finish computes ranges, size and free addresses.
func (p *IPAMPool) finish() {
	for key, r := range p.ranges {
		p.Ranges = append(p.Ranges, r.Subnet.String()+" "+key)
		p.Size += r.Size()
	}
	sort.Strings(p.Ranges)
	sort.Strings(p.Networks)
	sort.Slice(p.allocs, func(i, j int) bool { return p.allocs[i].Address.Less(p.allocs[j].Address) })
	if p.Size > 0 {
		free := p.Size - min(p.Size, uint64(p.Used+p.Reserved))
		p.Free = &free
	}
}

// CloseIPAM closes the stores of pools.
func CloseIPAM(pools []*IPAMPool) {
	seen := map[store.Store]bool{}
	for _, p := range pools {
		if !seen[p.st] {
			seen[p.st] = true
			p.st.Close()
		}
	}
}
