// Package networks renders operator-declared networks (plexus.dev
// NetworkDefinitions, OpenShift's additionalNetworks one object each) into
// NetworkAttachmentDefinitions and keeps them so: the Reconciler creates
// the NAD, puts back manual edits, deletes it when the definition goes
// away or moves, and reports conditions. Canonicalize, Validate and Render
// are pure and reproduce the Cluster Network Operator's output and
// messages.
package networks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/plexus-cni/plexus/pkg/apis/plexus/v1alpha1"
	"github.com/plexus-cni/plexus/pkg/nad"
)

// DefaultNamespace receives NADs of definitions without a namespace.
const DefaultNamespace = "default"

// Rendered is the NAD a definition becomes.
type Rendered struct {
	Namespace, Name string
	// Config is the NAD's spec.config.
	Config string
}

// Canonicalize rewrites the legacy case-insensitive spellings of the
// network type, the macvlan mode and the IPAM type to the canonical ones
// and returns a note for each rewrite (to be logged as a warning).
func Canonicalize(spec *v1.NetworkDefinitionSpec) []string {
	var notes []string
	fix := func(field string, v *string, canon ...string) {
		for _, c := range canon {
			if *v != c && strings.EqualFold(*v, c) {
				notes = append(notes, fmt.Sprintf("%s %q is deprecated, use %q", field, *v, c))
				*v = c
			}
		}
	}
	fix("type", &spec.Type, v1.NetworkTypeRaw, v1.NetworkTypeSimpleMacvlan)
	if m := spec.SimpleMacvlanConfig; m != nil {
		fix("simpleMacvlanConfig.mode", &m.Mode, v1.MacvlanModeBridge, v1.MacvlanModePrivate, v1.MacvlanModeVEPA, v1.MacvlanModePassthru)
		if m.IPAMConfig != nil {
			fix("simpleMacvlanConfig.ipamConfig.type", &m.IPAMConfig.Type, v1.IPAMTypeDHCP, v1.IPAMTypeStatic, v1.IPAMTypePlexusIPAM)
		}
	}
	return notes
}

// Validate returns every problem of a canonical spec, with the messages of
// the Cluster Network Operator (plus checks of the NAD name and namespace
// and of the PlexusIPAM settings).
func Validate(spec *v1.NetworkDefinitionSpec) []error {
	var errs []error
	switch spec.Type {
	case v1.NetworkTypeRaw:
		errs = append(errs, validateName(spec)...)
		var obj map[string]any
		if err := json.Unmarshal([]byte(spec.RawCNIConfig), &obj); err != nil {
			errs = append(errs, fmt.Errorf("failed to Unmarshal RawCNIConfig: %w", err))
		}
	case v1.NetworkTypeSimpleMacvlan:
		errs = append(errs, validateName(spec)...)
		errs = append(errs, validateMacvlan(spec.SimpleMacvlanConfig)...)
	default:
		errs = append(errs, fmt.Errorf("unknown or unsupported NetworkType: %s", spec.Type))
	}
	return errs
}

func validateName(spec *v1.NetworkDefinitionSpec) []error {
	if spec.Name == "" {
		return []error{errors.New("Additional Network Name cannot be nil")}
	}
	var errs []error
	for _, msg := range validation.IsDNS1123Subdomain(spec.Name) {
		errs = append(errs, fmt.Errorf("invalid name %s: %s", spec.Name, msg))
	}
	if spec.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(spec.Namespace) {
			errs = append(errs, fmt.Errorf("invalid namespace %s: %s", spec.Namespace, msg))
		}
	}
	return errs
}

func validateMacvlan(m *v1.SimpleMacvlanConfig) []error {
	if m == nil {
		return nil
	}
	var errs []error
	switch m.Mode {
	case "", v1.MacvlanModeBridge, v1.MacvlanModePrivate, v1.MacvlanModeVEPA, v1.MacvlanModePassthru:
	default:
		errs = append(errs, fmt.Errorf("invalid Macvlan mode: %s", m.Mode))
	}
	if m.IPAMConfig == nil {
		return errs
	}
	switch m.IPAMConfig.Type {
	case v1.IPAMTypeDHCP:
	case v1.IPAMTypeStatic:
		errs = append(errs, validateStatic(m.IPAMConfig.StaticIPAMConfig)...)
	case v1.IPAMTypePlexusIPAM:
		errs = append(errs, validatePlexusIPAM(m.IPAMConfig.PlexusIPAMConfig)...)
	default:
		errs = append(errs, fmt.Errorf("invalid IPAM type: %s", m.IPAMConfig.Type))
	}
	return errs
}

func validateStatic(s *v1.StaticIPAMConfig) []error {
	if s == nil {
		return nil
	}
	var errs []error
	gateway := func(gw string) {
		if gw != "" && net.ParseIP(gw) == nil {
			errs = append(errs, fmt.Errorf("invalid gateway: %s", gw))
		}
	}
	for _, a := range s.Addresses {
		if _, _, err := net.ParseCIDR(a.Address); err != nil {
			errs = append(errs, fmt.Errorf("invalid static address: %w", err))
		}
		gateway(a.Gateway)
	}
	for _, r := range s.Routes {
		if _, _, err := net.ParseCIDR(r.Destination); err != nil {
			errs = append(errs, fmt.Errorf("invalid route destination: %w", err))
		}
		gateway(r.Gateway)
	}
	return errs
}

// validatePlexusIPAM checks the settings with the NAD validator, so that a
// definition is refused exactly when its NAD would be.
func validatePlexusIPAM(p *v1.PlexusIPAMConfig) []error {
	if p == nil {
		return []error{errors.New("invalid plexusIPAMConfig: required for IPAM type PlexusIPAM")}
	}
	if err := nad.ValidateIPAM(plexusIPAMJSON(p), "plexusIPAMConfig"); err != nil {
		return []error{fmt.Errorf("invalid plexusIPAMConfig: %w", err)}
	}
	return nil
}

// Render canonicalizes and validates a copy of spec and returns its NAD.
// Any problem aborts rendering with CNO's aggregate message. The rendered
// configuration must also pass the NAD validator (pkg/nad), which the
// admission webhook applies to every NAD.
func Render(spec v1.NetworkDefinitionSpec) (Rendered, error) {
	c := spec.DeepCopy()
	Canonicalize(c)
	if errs := Validate(c); len(errs) > 0 {
		return Rendered{}, fmt.Errorf("invalid Additional Network Configuration: %v", errs)
	}
	r := Rendered{Namespace: c.Namespace, Name: c.Name}
	if r.Namespace == "" {
		r.Namespace = DefaultNamespace
	}
	if c.Type == v1.NetworkTypeRaw {
		r.Config = c.RawCNIConfig
	} else {
		r.Config = macvlanConfig(c.SimpleMacvlanConfig)
	}
	if _, err := nad.Parse([]byte(r.Config), r.Name); err != nil {
		return Rendered{}, fmt.Errorf("invalid Additional Network Configuration: [rendered NAD: %w]", err)
	}
	return r, nil
}

// macvlanConfig writes the SimpleMacvlan configuration with CNO's key
// order and spacing.
func macvlanConfig(m *v1.SimpleMacvlanConfig) string {
	var b bytes.Buffer
	b.WriteString(`{ "cniVersion": "0.3.1", "type": "macvlan", `)
	var ipam *v1.IPAMConfig
	if m != nil {
		if m.Master != "" {
			fmt.Fprintf(&b, `"master": %s, `, quote(m.Master))
		}
		if m.Mode != "" {
			fmt.Fprintf(&b, `"mode": %s, `, quote(strings.ToLower(m.Mode)))
		}
		if m.MTU != 0 {
			fmt.Fprintf(&b, `"mtu": %d, `, m.MTU)
		}
		ipam = m.IPAMConfig
	}
	fmt.Fprintf(&b, `"ipam": %s }`, ipamJSON(ipam))
	return b.String()
}

func quote(s string) string {
	q, _ := json.Marshal(s) // a string always marshals
	return string(q)
}

func ipamJSON(c *v1.IPAMConfig) string {
	switch {
	case c == nil || c.Type == v1.IPAMTypeDHCP:
		return `{ "type": "dhcp" }`
	case c.Type == v1.IPAMTypePlexusIPAM:
		return string(plexusIPAMJSON(c.PlexusIPAMConfig))
	default:
		return string(staticJSON(c.StaticIPAMConfig))
	}
}
