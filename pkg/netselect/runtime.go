package netselect

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

const maxPort = 65535

// rawPortMapping detects missing keys; hostIP and protocol are optional.
type rawPortMapping struct {
	HostPort      *int    `json:"hostPort"`
	ContainerPort *int    `json:"containerPort"`
	Protocol      string  `json:"protocol"`
	HostIP        *string `json:"hostIP"`
}

func (e element) portMappings(sel *Selection) error {
	if !e.has("portMappings") {
		return nil
	}
	var raws []json.RawMessage
	if err := e.decode("portMappings", "an array of port mapping objects", &raws); err != nil {
		return err
	}
	if len(raws) == 0 {
		return fielderr.New(e.sub("portMappings"), "", "must list at least one port mapping")
	}
	for i, raw := range raws {
		pm, err := parsePortMapping(raw, fmt.Sprintf("%s[%d]", e.sub("portMappings"), i))
		if err != nil {
			return err
		}
		sel.PortMappings = append(sel.PortMappings, pm)
	}
	return nil
}

func parsePortMapping(raw json.RawMessage, field string) (PortMapping, error) {
	var r rawPortMapping
	if err := json.Unmarshal(raw, &r); err != nil || string(raw) == "null" {
		return PortMapping{}, fielderr.New(field, string(raw),
			"must be an object with integer hostPort and containerPort")
	}
	if err := checkPort(r.HostPort, field+".hostPort"); err != nil {
		return PortMapping{}, err
	}
	if err := checkPort(r.ContainerPort, field+".containerPort"); err != nil {
		return PortMapping{}, err
	}
	pm := PortMapping{HostPort: *r.HostPort, ContainerPort: *r.ContainerPort}
	switch proto := strings.ToUpper(r.Protocol); proto {
	case "", "TCP", "UDP", "SCTP":
		pm.Protocol = proto
	default:
		return PortMapping{}, fielderr.New(field+".protocol", r.Protocol, "must be TCP, UDP or SCTP")
	}
	if r.HostIP != nil {
		if net.ParseIP(*r.HostIP) == nil {
			return PortMapping{}, fielderr.New(field+".hostIP", *r.HostIP, "not an IP address")
		}
		pm.HostIP = *r.HostIP
	}
	return pm, nil
}

func checkPort(p *int, field string) error {
	if p == nil {
		return fielderr.New(field, "", "is required")
	}
	if *p < 1 || *p > maxPort {
		return fielderr.New(field, fmt.Sprint(*p), "must be between 1 and 65535")
	}
	return nil
}

// rawBandwidth detects keys set to zero.
type rawBandwidth struct {
	IngressRate  *int64 `json:"ingressRate"`
	IngressBurst *int64 `json:"ingressBurst"`
	EgressRate   *int64 `json:"egressRate"`
	EgressBurst  *int64 `json:"egressBurst"`
}

func (e element) bandwidth(sel *Selection) error {
	if !e.has("bandwidth") {
		return nil
	}
	var r rawBandwidth
	if err := e.decode("bandwidth", "an object of integer rates and bursts", &r); err != nil {
		return err
	}
	f := e.sub("bandwidth")
	checks := []struct {
		key       string
		v, rate   *int64
		rateKey   string
		needsRate bool
	}{
		{"ingressRate", r.IngressRate, nil, "", false},
		{"ingressBurst", r.IngressBurst, r.IngressRate, "ingressRate", true},
		{"egressRate", r.EgressRate, nil, "", false},
		{"egressBurst", r.EgressBurst, r.EgressRate, "egressRate", true},
	}
	for _, c := range checks {
		if c.v == nil {
			continue
		}
		if *c.v <= 0 {
			return fielderr.New(f+"."+c.key, fmt.Sprint(*c.v), "must be greater than 0")
		}
		if c.needsRate && c.rate == nil {
			return fielderr.New(f+"."+c.key, fmt.Sprint(*c.v), "needs %s", c.rateKey)
		}
	}
	sel.Bandwidth = &Bandwidth{
		IngressRate: deref(r.IngressRate), IngressBurst: deref(r.IngressBurst),
		EgressRate: deref(r.EgressRate), EgressBurst: deref(r.EgressBurst),
	}
	return nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func (e element) defaultRoute(sel *Selection) error {
	if !e.has("default-route") {
		return nil
	}
	var gws []string
	if err := e.decode("default-route", "an array of gateway IP addresses", &gws); err != nil {
		return err
	}
	sel.DefaultRoute = make([]net.IP, 0, len(gws))
	for i, gw := range gws {
		ip := net.ParseIP(gw)
		if ip == nil {
			return fielderr.New(fmt.Sprintf("%s[%d]", e.sub("default-route"), i), gw, "not an IP address")
		}
		sel.DefaultRoute = append(sel.DefaultRoute, ip)
	}
	return nil
}
