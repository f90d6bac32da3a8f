// Package cniargs splits CNI_ARGS ("K1=V1;K2=V2") into its pairs, the one
// way every plexus binary reads it: empty items are skipped, an item
// without "=" or with an empty key is an error naming the item.
package cniargs

import (
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// Parse returns the pairs of s in order.
func Parse(s string) ([][2]string, error) {
	var pairs [][2]string
	for _, item := range strings.Split(s, ";") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fielderr.New("CNI_ARGS", item, "want KEY=VALUE")
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}
