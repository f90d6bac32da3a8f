// Package nadclient builds the typed NetworkAttachmentDefinition clientset
// of the network plumbing working group's client module from a REST
// configuration.
//
// The one thing it adds is the encoding: plexus's components set protobuf
// as their content type for core objects, and a custom resource has no
// protobuf form (the module's types cannot be encoded to it, and the API
// server serves CRDs in JSON only), so the NAD clientset is given a copy of
// the configuration that speaks JSON (func JSON, which the controller's
// plexus.dev clientset uses too). Informers are in nadinformer, so that the
// in-process plugin, which only GETs, does not link client-go's cache.
package nadclient

import (
	"fmt"

	"github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	"k8s.io/client-go/rest"
)

// Interface is the module's clientset interface.
type Interface = versioned.Interface

// JSON returns a copy of cfg that speaks JSON, for the clients of custom
// resources. The copy keeps everything else (host, credentials, timeout,
// rate limits), and client-go's transport cache hands it the same
// connections.
func JSON(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.ContentType, c.AcceptContentTypes = "application/json", "application/json"
	return c
}

// NewForConfig returns the NAD clientset for cfg, speaking JSON.
func NewForConfig(cfg *rest.Config) (Interface, error) {
	cs, err := versioned.NewForConfig(JSON(cfg))
	if err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition client for %s: %w", cfg.Host, err)
	}
	return cs, nil
}
