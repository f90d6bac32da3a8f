package config

import (
	"strings"

	"github.com/plexus-cni/plexus/pkg/cniargs"
)

// Args are the CNI_ARGS plexus-ipam reads.
type Args struct {
	PodNamespace string // K8S_POD_NAMESPACE
	PodName      string // K8S_POD_NAME
	PodUID       string // K8S_POD_UID
	// IPs are the requested addresses of the IP= convention, as written.
	IPs []string
}

// ParseArgs parses CNI_ARGS ("K1=V1;K2=V2"). Unknown keys are ignored, as
// IgnoreUnknown asks; a pair without "=" is an error.
func ParseArgs(s string) (Args, error) {
	pairs, err := cniargs.Parse(s)
	if err != nil {
		return Args{}, err
	}
	var a Args
	for _, kv := range pairs {
		switch v := kv[1]; kv[0] {
		case "K8S_POD_NAMESPACE":
			a.PodNamespace = v
		case "K8S_POD_NAME":
			a.PodName = v
		case "K8S_POD_UID":
			a.PodUID = v
		case "IP":
			for _, ip := range strings.Split(v, ",") {
				if ip = strings.TrimSpace(ip); ip != "" {
					a.IPs = append(a.IPs, ip)
				}
			}
		}
	}
	return a, nil
}
