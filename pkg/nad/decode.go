package nad

import (
	"encoding/json"
	"errors"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// DecodeNAD decodes a NetworkAttachmentDefinition from YAML or JSON. The
// kind and apiVersion, when set, must be the NAD's; metadata.name is
// required and spec.config must be a string.
func DecodeNAD(obj []byte) (*NetworkAttachmentDefinition, error) {
	var n NetworkAttachmentDefinition
	if err := yaml.Unmarshal(obj, &n); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field == "spec.config" {
			return nil, fielderr.New("spec.config", "", "must be a string holding the CNI configuration JSON, not a %s", te.Value)
		}
		return nil, fmt.Errorf("decode NetworkAttachmentDefinition: %w", err)
	}
	if n.Kind != "" && n.Kind != Kind {
		return nil, fielderr.New("kind", n.Kind, "want %s", Kind)
	}
	if want := Group + "/" + Version; n.APIVersion != "" && n.APIVersion != want {
		return nil, fielderr.New("apiVersion", n.APIVersion, "want %s", want)
	}
	if n.Name == "" {
		return nil, fielderr.New("metadata.name", "", "is required")
	}
	return &n, nil
}
