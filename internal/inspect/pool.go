package inspect

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/plexus-cni/plexus/pkg/ipam/config"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// Pool is the usage of one plexus-ipam range.
type Pool struct {
	// Space is the address-space key allocations are counted in.
	Space string `json:"space"`
	Range string `json:"range"`
	First string `json:"first"`
	Last  string `json:"last"`
	// Size is how many addresses the range can hand out.
	Size        uint64      `json:"size"`
	Allocated   int         `json:"allocated"`
	Allocations []PoolEntry `json:"allocations"`
	// Note explains missing usage (an etcd store is not read).
	Note string `json:"note,omitempty"`
}

// PoolEntry is one allocated address.
type PoolEntry struct {
	Address   string `json:"address"`
	Pod       string `json:"pod,omitempty"`
	Interface string `json:"interface"`
	Node      string `json:"node,omitempty"`
}

// noFiles makes the IPAM loader ignore configuration_path files, which
// live on nodes.
type noFiles struct{}

func (noFiles) ReadFile(string) ([]byte, error) { return nil, fs.ErrNotExist }

// pools returns the usage of every plexus-ipam (or whereabouts) range of
// the delegate's plugins.
func pools(ctx context.Context, c Cluster, d *nad.Delegate) ([]Pool, error) {
	var list struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if err := json.Unmarshal(d.Conflist, &list); err != nil {
		return nil, fmt.Errorf("network %s: decoding its conflist: %w", d.Name, err)
	}
	var out []Pool
	for _, p := range list.Plugins {
		var peek struct {
			IPAM struct {
				Type string `json:"type"`
			} `json:"ipam"`
		}
		if json.Unmarshal(p, &peek) != nil || (peek.IPAM.Type != config.TypePlexus && peek.IPAM.Type != config.TypeWhereabouts) {
			continue
		}
		conf, err := config.Loader{Files: noFiles{}}.Load(withName(p, list.Name, list.CNIVersion), config.Args{})
		if err != nil {
			out = append(out, Pool{Note: err.Error()})
			continue
		}
		got, err := confPools(ctx, c, conf)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// withName injects the list's name and version into a plugin config.
func withName(plugin json.RawMessage, name, version string) []byte {
	var m map[string]any
	_ = json.Unmarshal(plugin, &m) // decoded above
	m["name"], m["cniVersion"] = name, version
	b, _ := json.Marshal(m)
	return b
}

func confPools(ctx context.Context, c Cluster, conf *config.Conf) ([]Pool, error) {
	var st store.Store
	if conf.Etcd == nil {
		ns := conf.Namespace
		if ns == "" {
			ns = config.DefaultNamespace
		}
		ks, err := kubestore.New(c.Config, kubestore.Options{Namespace: ns})
		if err != nil {
			return nil, err
		}
		st = ks
	}
	var out []Pool
	for _, slot := range conf.Slots {
		for _, r := range slot.Ranges {
			p := Pool{Space: conf.Space(r), Range: r.Subnet.String(), First: r.First.String(), Last: r.Last.String(),
				Size: r.Size(), Allocations: []PoolEntry{}}
			if st == nil {
				p.Note = "allocations are in etcd (etcd_host); not read"
				out = append(out, p)
				continue
			}
			allocs, err := st.List(ctx, store.Filter{Space: p.Space})
			if err != nil {
				return nil, fmt.Errorf("listing allocations of %s: %w", p.Space, err)
			}
			for _, a := range allocs {
				if r.Check(a.Address) != nil {
					continue
				}
				e := PoolEntry{Address: a.Address.String(), Interface: a.IfName, Node: a.Node}
				if a.PodName != "" {
					e.Pod = a.PodNamespace + "/" + a.PodName
				}
				p.Allocations = append(p.Allocations, e)
			}
			slices.SortFunc(p.Allocations, func(x, y PoolEntry) int { return compareAddr(x.Address, y.Address) })
			p.Allocated = len(p.Allocations)
			out = append(out, p)
		}
	}
	return out, nil
}

func (p Pool) writeText(w io.Writer) {
	if p.Range == "" {
		fmt.Fprintf(w, "Pool:         unreadable: %s\n", p.Note)
		return
	}
	fmt.Fprintf(w, "Pool:         %s (%s - %s): %d of %d allocated\n", p.Range, p.First, p.Last, p.Allocated, p.Size)
	if p.Note != "" {
		fmt.Fprintf(w, "  %s\n", p.Note)
	}
	if len(p.Allocations) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  ADDRESS\tPOD\tINTERFACE\tNODE")
	for _, a := range p.Allocations {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", a.Address, dash(a.Pod), dash(a.Interface), dash(a.Node))
	}
	tw.Flush()
}

func compareAddr(a, b string) int {
	x, errX := netip.ParseAddr(a)
	y, errY := netip.ParseAddr(b)
	if errX != nil || errY != nil {
		return strings.Compare(a, b)
	}
	return x.Compare(y)
}
