package netselect

import (
	"fmt"
	"strings"

	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// parseComma parses the comma form: items "[namespace/]name[@ifname]".
func parseComma(value, podNamespace, root string) ([]Selection, error) {
	items := strings.Split(value, ",")
	sels := make([]Selection, 0, len(items))
	for i, raw := range items {
		field := fmt.Sprintf("%s[%d]", root, i)
		sel, err := parseCommaItem(strings.TrimSpace(raw), field)
		if err != nil {
			return nil, err
		}
		if sel.Namespace == "" {
			sel.Namespace = podNamespace
		}
		sels = append(sels, sel)
	}
	return sels, nil
}

// parseCommaItem parses one trimmed comma-form item.
func parseCommaItem(item, field string) (Selection, error) {
	if item == "" {
		return Selection{}, fielderr.New(field, "", "empty item (a stray or trailing ',')")
	}
	if strings.Count(item, "/") > 1 {
		return Selection{}, fielderr.New(field, item, "more than one '/'; want [namespace/]name[@interface]")
	}
	if strings.Count(item, "@") > 1 {
		return Selection{}, fielderr.New(field, item, "more than one '@'; want [namespace/]name[@interface]")
	}
	var sel Selection
	rest := item
	if before, after, ok := strings.Cut(rest, "@"); ok {
		if msg := CheckInterfaceName(after); msg != "" {
			return Selection{}, fielderr.New(field+".interface", item, "interface %s", msg)
		}
		rest, sel.InterfaceName = before, after
	}
	if before, after, ok := strings.Cut(rest, "/"); ok {
		if msg := checkLabel(before); msg != "" {
			return Selection{}, fielderr.New(field+".namespace", item, "namespace %s", msg)
		}
		rest, sel.Namespace = after, before
	}
	if msg := checkSubdomain(rest); msg != "" {
		return Selection{}, fielderr.New(field+".name", item, "name %s", msg)
	}
	sel.Name = rest
	return sel, nil
}
