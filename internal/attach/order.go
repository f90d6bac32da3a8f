package attach

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Stages partitions atts, kept in order, into the stages Add runs one after
// another, as indexes into atts. Consecutive independent attachments (see
// OrderReason) share a stage and may run at once: neither can depend on the
// other. Every other attachment is a stage of its own, so it starts after
// everything before it has finished and finishes before anything after it
// starts: the annotation order, as Multus keeps it.
func Stages(atts []Attachment) [][]int {
	var stages [][]int
	open := false // whether the last stage takes more independent attachments
	for i := range atts {
		independent := OrderReason(atts, i) == ""
		if independent && open {
			stages[len(stages)-1] = append(stages[len(stages)-1], i)
			continue
		}
		stages = append(stages, []int{i})
		open = independent
	}
	return stages
}

// OrderReason says why atts[i] must keep its place in the order of atts, or
// returns "" when atts[i] is independent: every plugin of its list is of a
// type known to be self-contained (see selfContained), none has
// linkInContainer set, a tuning plugin sets only sysctls of its own
// interface, and neither its configuration nor its runtime arguments name
// another attachment's interface. Anything else is doubt, and doubt keeps
// the order.
func OrderReason(atts []Attachment, i int) string {
	a := &atts[i]
	if a.List == nil || len(a.List.Plugins) == 0 {
		return "it has no plugin configuration"
	}
	others := map[string]bool{}
	for j := range atts {
		if j != i && atts[j].IfName != "" && atts[j].IfName != a.IfName {
			others[atts[j].IfName] = true
		}
	}
	for k, p := range a.List.Plugins {
		var conf map[string]any
		if err := json.Unmarshal(p.Bytes, &conf); err != nil {
			return fmt.Sprintf("plugins[%d] cannot be read: %v", k, err)
		}
		if r := pluginReason(conf, a.IfName, others); r != "" {
			return r
		}
	}
	if len(a.CapabilityArgs) > 0 {
		var caps any
		b, err := json.Marshal(a.CapabilityArgs)
		if err == nil {
			err = json.Unmarshal(b, &caps)
		}
		if err != nil {
			return fmt.Sprintf("its runtime arguments cannot be read: %v", err)
		}
		if name := reference(caps, others); name != "" {
			return fmt.Sprintf("its runtime arguments name the pod's interface %q", name)
		}
	}
	return ""
}

func pluginReason(conf map[string]any, ifName string, others map[string]bool) string {
	typ, _ := conf["type"].(string)
	hostKeys, known := selfContained(typ)
	if !known {
		return fmt.Sprintf("plugin type %q is not known to be self-contained", typ)
	}
	if v, set := conf["linkInContainer"]; set && v != false {
		return fmt.Sprintf("plugin %q has linkInContainer: its link is an interface of the pod", typ)
	}
	if typ == "tuning" {
		if key := sharedSysctl(conf, ifName); key != "" {
			return fmt.Sprintf("plugin \"tuning\" sets sysctl %q, which is not its own interface's", key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(conf)) {
		v := conf[key]
		switch {
		case key == "type" || key == "name" || key == "cniVersion" || slices.Contains(hostKeys, key):
			continue
		case others[key]:
			return fmt.Sprintf("plugin %q names the pod's interface %q", typ, key)
		}
		if name := reference(v, others); name != "" {
			return fmt.Sprintf("plugin %q names the pod's interface %q in %q", typ, name, key)
		}
	}
	return ""
}

// selfContained reports whether plugins of type typ are known to touch, in
// the pod, only the interface they are given (CNI_IFNAME), besides
// host-side state that they already share safely between pods attached at
// the same time; and which of their keys name host interfaces, never the
// pod's (linkInContainer aside, which keeps the order anyway).
//
// Left out on purpose: bond (enslaves earlier interfaces), sbr (picks the
// first routing table free in the pod), vrf (shares one VRF device among
// attachments), tap (may join a bridge in the pod), loopback (the pod's lo),
// and every type not listed here.
func selfContained(typ string) (hostKeys []string, ok bool) {
	switch typ {
	case "macvlan", "ipvlan", "vlan", "sriov":
		return []string{"master"}, true
	case "bridge":
		return []string{"bridge"}, true
	case "host-device":
		return []string{"device"}, true
	case "ptp", "dummy", "tuning", "portmap", "bandwidth", "firewall":
		return nil, true
	}
	return nil, false
}

// sharedSysctl returns the first sysctl that a tuning configuration sets
// (in "sysctl" or "args.cni.sysctl") and that is not one of its own
// interface, IFNAME or ifName; "" when there is none.
func sharedSysctl(conf map[string]any, ifName string) string {
	sets := []any{conf["sysctl"]}
	if args, ok := conf["args"].(map[string]any); ok {
		if cni, ok := args["cni"].(map[string]any); ok {
			sets = append(sets, cni["sysctl"])
		}
	}
	for _, set := range sets {
		m, _ := set.(map[string]any)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !ownSysctl(k, ifName) {
				return k
			}
		}
	}
	return ""
}

// ownSysctl reports whether key is a per-interface sysctl
// (net.ipv{4,6}.{conf,neigh}.<interface>.*) of IFNAME or ifName.
func ownSysctl(key, ifName string) bool {
	p := strings.Split(strings.ReplaceAll(key, "/", "."), ".")
	return len(p) >= 5 && p[0] == "net" && (p[1] == "ipv4" || p[1] == "ipv6") &&
		(p[2] == "conf" || p[2] == "neigh") && (p[3] == "IFNAME" || p[3] == ifName)
}

// reference returns the first string (object key or value, at any depth)
// of v that is one of names, or "".
func reference(v any, names map[string]bool) string {
	switch v := v.(type) {
	case string:
		if names[v] {
			return v
		}
	case []any:
		for _, e := range v {
			if r := reference(e, names); r != "" {
				return r
			}
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if names[k] {
				return k
			}
			if r := reference(v[k], names); r != "" {
				return r
			}
		}
	}
	return ""
}
