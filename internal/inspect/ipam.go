package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/plexus-cni/plexus/pkg/ipam/alloc"
	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/etcdstore"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// IPAMPool is one pool of one plexus-ipam store: the addresses of one
// range network (CIDR) in one address space, as Whereabouts keeps one
// IPPool per range network and network_name.
type IPAMPool struct {
	// Name is the name Whereabouts gives that IPPool: the CIDR spelled
	// with '-', after network_name and '-' when set ("192.0.2.0-24",
	// "blue-198.51.100.0-24"). Allocations of a space outside every range
	// its NADs give it form a row named after the space.
	Name  string `json:"name"`
	Store string `json:"store"`
	// SpaceName names the address space ("default", the network_name,
	// "<network_name>@<CIDR>" with enable_overlapping_ranges false) and
	// Space is its key.
	SpaceName string `json:"spaceName"`
	Space     string `json:"space"`
	// Subnet is the range network ("" for the row outside every range).
	Subnet string `json:"subnet,omitempty"`
	// Ranges and Networks come from the NADs that use the pool.
	Ranges   []string `json:"ranges,omitempty"`
	Networks []string `json:"networks,omitempty"`
	// Size is how many addresses the ranges hand out, overlaps counted
	// once (0: unknown).
	Size     uint64 `json:"size"`
	Used     int    `json:"used"`
	Reserved int    `json:"reserved"`
	// Free is Size minus used and reserved (absent when Size is unknown).
	Free *uint64 `json:"free,omitempty"`
	// Indexed is what the space's index counts (all its pools).
	Indexed uint64 `json:"indexed"`

	ranges map[string]*alloc.Range
	allocs []store.Allocation
	// spaceAllocs are the allocations of the whole space.
	spaceAllocs []store.Allocation
	st          store.Store
}

// IPAMOptions select the NADs and stores read.
type IPAMOptions struct {
	// NADNamespace limits the NADs read ("": every namespace).
	NADNamespace string
	// Namespaces of Kubernetes stores read besides those the NADs name
	// (nil: kube-system, plexus-ipam's default).
	Namespaces []string
}

// ipamStore is one store and the spaces the NADs put in it.
type ipamStore struct {
	name   string
	st     store.Store
	spaces map[string]*ipamSpace
}

// ipamSpace is what is known of one space: the NADs' ranges and the
// store's allocations and index.
type ipamSpace struct {
	ranges   map[string]*alloc.Range // "first-last" -> range
	networks map[netip.Prefix][]string
	allocs   []store.Allocation
	indexed  uint64
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
		s := &ipamStore{name: name, st: st, spaces: map[string]*ipamSpace{}}
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
	err := eachNAD(ctx, c, ns, func(u *nad.NetworkAttachmentDefinition) error {
		out = append(out, nadIPAMConfigs(u)...)
		return nil
	})
	return out, err
}

// nadIPAMConfigs parses the plexus-ipam and whereabouts configurations of
// one NAD.
func nadIPAMConfigs(u *nad.NetworkAttachmentDefinition) []IPAMConfig {
	raw := u.Spec.Config
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
			sp := s.space(nc.conf.Space(r))
			sp.ranges[r.First.String()+"-"+r.Last.String()] = r
			if !slices.Contains(sp.networks[r.Subnet], nc.nad) {
				sp.networks[r.Subnet] = append(sp.networks[r.Subnet], nc.nad)
			}
		}
	}
}

func (s *ipamStore) space(key string) *ipamSpace {
	sp, ok := s.spaces[key]
	if !ok {
		sp = &ipamSpace{ranges: map[string]*alloc.Range{}, networks: map[netip.Prefix][]string{}}
		s.spaces[key] = sp
	}
	return sp
}

// read lists the store's allocations and index summaries and returns its
// pools.
func (s *ipamStore) read(ctx context.Context) ([]*IPAMPool, error) {
	infos, err := s.st.Spaces(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		s.space(in.Space).indexed = in.Allocated
	}
	allocs, err := s.st.List(ctx, store.Filter{})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(allocs, func(a, b store.Allocation) int { return a.Address.Compare(b.Address) })
	for _, a := range allocs {
		sp := s.space(a.Space)
		sp.allocs = append(sp.allocs, a)
	}
	var out []*IPAMPool
	for key, sp := range s.spaces {
		out = append(out, s.pools(key, sp)...)
	}
	return out, nil
}

// pools splits a space into one pool per range network, plus one for
// its allocations outside every range (when there are any, or when the
// space has no range at all).
func (s *ipamStore) pools(key string, sp *ipamSpace) []*IPAMPool {
	netName := strings.TrimPrefix(key, "net:")
	netName, _, _ = strings.Cut(netName, " range:")
	bySubnet := map[netip.Prefix]*IPAMPool{}
	var out []*IPAMPool
	for rk, r := range sp.ranges {
		p := bySubnet[r.Subnet]
		if p == nil {
			p = s.newPool(key, sp, config.WhereaboutsPoolName(netName, r.Subnet), r.Subnet.String())
			p.Networks = slices.Clone(sp.networks[r.Subnet])
			bySubnet[r.Subnet] = p
			out = append(out, p)
		}
		p.ranges[rk] = r
	}
	var outside *IPAMPool
	for _, a := range sp.allocs {
		in := false
		for subnet, p := range bySubnet {
			if subnet.Contains(a.Address) {
				p.add(a)
				in = true
			}
		}
		if !in {
			if outside == nil {
				outside = s.newPool(key, sp, config.SpaceName(key), "")
				out = append(out, outside)
			}
			outside.add(a)
		}
	}
	if len(out) == 0 {
		out = append(out, s.newPool(key, sp, config.SpaceName(key), ""))
	}
	for _, p := range out {
		p.finish()
	}
	return out
}

func (s *ipamStore) newPool(key string, sp *ipamSpace, name, subnet string) *IPAMPool {
	return &IPAMPool{Name: name, Store: s.name, SpaceName: config.SpaceName(key), Space: key, Subnet: subnet,
		Indexed: sp.indexed, ranges: map[string]*alloc.Range{}, spaceAllocs: sp.allocs, st: s.st}
}

func (p *IPAMPool) add(a store.Allocation) {
	p.allocs = append(p.allocs, a)
	if a.Reserved() {
		p.Reserved++
	} else {
		p.Used++
	}
}

// finish computes ranges, size and free addresses.
func (p *IPAMPool) finish() {
	var offered alloc.Set
	for key, r := range p.ranges {
		p.Ranges = append(p.Ranges, r.Subnet.String()+" "+key)
		r.AddTo(&offered)
	}
	p.Size = offered.Count()
	sort.Strings(p.Ranges)
	sort.Strings(p.Networks)
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
