package netselect

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// element holds the raw keys of one JSON network selection element.
type element struct {
	raw   map[string]json.RawMessage
	field string
}

// parseElement decodes and validates one JSON network selection element.
func parseElement(raw json.RawMessage, field string) (Selection, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return Selection{}, fielderr.New(field, string(raw), "must be a JSON object")
	}
	e := element{raw: obj, field: field}
	var sel Selection
	steps := []func(*Selection) error{
		e.names, e.iface, e.ips, e.hardware, e.cniArgs,
		e.portMappings, e.bandwidth, e.defaultRoute, e.claim,
	}
	for _, step := range steps {
		if err := step(&sel); err != nil {
			return Selection{}, err
		}
	}
	return sel, nil
}

func (e element) sub(key string) string { return e.field + "." + key }

// has reports whether key is present with a non-null value.
func (e element) has(key string) bool {
	v, ok := e.raw[key]
	return ok && !bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// decode unmarshals key into dst; absent or null keys leave dst alone.
func (e element) decode(key, what string, dst any) error {
	if !e.has(key) {
		return nil
	}
	if err := json.Unmarshal(e.raw[key], dst); err != nil {
		return fielderr.New(e.sub(key), string(e.raw[key]), "must be %s", what)
	}
	return nil
}

func (e element) str(key string) (string, error) {
	var s string
	err := e.decode(key, "a string", &s)
	return s, err
}

func (e element) names(sel *Selection) error {
	name, err := e.str("name")
	if err != nil {
		return err
	}
	if name == "" {
		return fielderr.New(e.sub("name"), "", "is required")
	}
	if msg := checkSubdomain(name); msg != "" {
		return fielderr.New(e.sub("name"), name, "name %s", msg)
	}
	ns, err := e.str("namespace")
	if err != nil {
		return err
	}
	if msg := checkLabel(ns); ns != "" && msg != "" {
		return fielderr.New(e.sub("namespace"), ns, "namespace %s", msg)
	}
	sel.Name, sel.Namespace = name, ns
	return nil
}

func (e element) iface(sel *Selection) error {
	name, err := e.str("interface")
	if err != nil {
		return err
	}
	alias, err := e.str("interfaceRequest")
	if err != nil {
		return err
	}
	key := "interface"
	switch {
	case name == "" && alias != "":
		name, key = alias, "interfaceRequest"
	case name != "" && alias != "" && alias != name:
		return fielderr.New(e.sub("interfaceRequest"), alias,
			"conflicts with interface %q (interfaceRequest is its deprecated alias)", name)
	}
	if msg := CheckInterfaceName(name); name != "" && msg != "" {
		return fielderr.New(e.sub(key), name, "interface name %s", msg)
	}
	sel.InterfaceName = name
	return nil
}

func (e element) ips(sel *Selection) error {
	if !e.has("ips") {
		return nil
	}
	var ips []string
	if err := e.decode("ips", "an array of IP addresses", &ips); err != nil {
		return err
	}
	if len(ips) == 0 {
		return fielderr.New(e.sub("ips"), "", "must list at least one IP address")
	}
	for i, ip := range ips {
		if !isIPOrCIDR(ip) {
			return fielderr.New(fmt.Sprintf("%s[%d]", e.sub("ips"), i), ip, "not an IP address or CIDR")
		}
	}
	sel.IPs = ips
	return nil
}

func isIPOrCIDR(s string) bool {
	if strings.Contains(s, "/") {
		_, _, err := net.ParseCIDR(s)
		return err == nil
	}
	return net.ParseIP(s) != nil
}

// hardware validates mac, infiniband-guid and deviceID.
func (e element) hardware(sel *Selection) error {
	mac, err := e.str("mac")
	if err != nil {
		return err
	}
	if hw, perr := net.ParseMAC(mac); mac != "" && (perr != nil || len(hw) != 6) {
		return fielderr.New(e.sub("mac"), mac, "not a 6-byte Ethernet MAC address (like 02:00:5e:10:00:01)")
	}
	guid, err := e.str("infiniband-guid")
	if err != nil {
		return err
	}
	if hw, perr := net.ParseMAC(guid); guid != "" && (perr != nil || len(hw) != 8) {
		return fielderr.New(e.sub("infiniband-guid"), guid, "not an 8-byte InfiniBand GUID (like 24:8a:07:03:00:8d:ae:2f)")
	}
	dev, err := e.str("deviceID")
	if err != nil {
		return err
	}
	sel.MAC, sel.InfinibandGUID, sel.DeviceID = mac, guid, dev
	return nil
}

func (e element) cniArgs(sel *Selection) error {
	if !e.has("cni-args") {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(e.raw["cni-args"]))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return fielderr.New(e.sub("cni-args"), string(e.raw["cni-args"]), "must be a JSON object")
	}
	if len(args) > 0 {
		sel.CNIArgs = args
	}
	return nil
}

func (e element) claim(sel *Selection) error {
	ref, err := e.str("ipam-claim-reference")
	if err != nil || ref == "" {
		return err
	}
	if msg := checkSubdomain(ref); msg != "" {
		return fielderr.New(e.sub("ipam-claim-reference"), ref, "IPAMClaim name %s", msg)
	}
	if len(sel.IPs) > 0 {
		return fielderr.New(e.sub("ipam-claim-reference"), ref, "must not be combined with ips")
	}
	sel.IPAMClaimReference = ref
	return nil
}
