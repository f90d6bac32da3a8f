package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// TableOptions shape the pods table.
type TableOptions struct {
	// AllNamespaces adds the NAMESPACE column.
	AllNamespaces bool
	// Wide adds NODE, REQUESTED (whether the networks annotation asked for
	// the interface: yes, no, "-" for the cluster network, or missing and
	// invalid rows) and LAST FAILURE (the pod's newest Warning event).
	Wide bool
}

// WritePodsTable writes one row per interface (a pod without any gets one
// row of dashes); wide adds a row per requested network that is missing.
func WritePodsTable(w io.Writer, pods []Pod, o TableOptions) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	head := "POD\tINTERFACE\tNETWORK\tIPS\tMAC\tDEFAULT"
	devices := anyDevice(pods)
	if devices {
		head += "\tDEVICE"
	}
	if o.AllNamespaces {
		head = "NAMESPACE\t" + head
	}
	if o.Wide {
		head += "\tNODE\tREQUESTED\tLAST FAILURE"
	}
	fmt.Fprintln(tw, head)
	for i := range pods {
		for j, row := range podRows(&pods[i], o.Wide, devices) {
			prefix := pods[i].Name
			if o.AllNamespaces {
				prefix = pods[i].Namespace + "\t" + prefix
			}
			line := prefix + "\t" + strings.Join(row.cells, "\t")
			if o.Wide {
				line += "\t" + wideCells(&pods[i], row.requested, j == 0)
			}
			if row.note != "" {
				line += "\t# " + row.note
			}
			fmt.Fprintln(tw, line)
		}
	}
	return tw.Flush()
}

// podRow is one table row: the interface cells, the REQUESTED cell and a
// trailing comment.
type podRow struct {
	cells     []string
	requested string
	note      string
}

func podRows(p *Pod, wide, devices bool) []podRow {
	none := []string{"-", "-", "-", "-", "-"}
	if devices {
		none = append(none, "-")
	}
	if p.Problem != "" {
		return []podRow{{cells: none, requested: "-", note: p.Problem}}
	}
	var rows []podRow
	for i, e := range p.Interfaces {
		req := "-"
		switch {
		case e.Default:
		case i < len(p.requested) && p.requested[i]:
			req = "yes"
		case p.requested != nil:
			req = "no"
		}
		cells := []string{dash(e.Interface), e.Name, dash(strings.Join(e.IPs, ",")), dash(e.Mac), yesNo(e.Default)}
		if devices {
			cells = append(cells, dash(DeviceOf(e.DeviceInfo)))
		}
		rows = append(rows, podRow{cells: cells, requested: req})
	}
	if wide {
		for _, m := range p.Missing {
			network, ifname, _ := strings.Cut(m, "@")
			rows = append(rows, podRow{cells: append([]string{dash(ifname), network}, none[2:]...), requested: "missing"})
		}
		if p.RequestError != "" {
			rows = append(rows, podRow{cells: none, requested: "invalid", note: p.RequestError})
		}
	}
	if len(rows) == 0 {
		rows = append(rows, podRow{cells: none, requested: "-"})
	}
	return rows
}

// wideCells are NODE, REQUESTED and LAST FAILURE (on the pod's first row).
func wideCells(p *Pod, requested string, first bool) string {
	failure := "-"
	if first && p.LastFailure != nil {
		failure = p.LastFailure.String()
	}
	return dash(p.Node) + "\t" + requested + "\t" + failure
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func anyDevice(pods []Pod) bool {
	for _, p := range pods {
		for _, e := range p.Interfaces {
			if DeviceOf(e.DeviceInfo) != "" {
				return true
			}
		}
	}
	return false
}

// DeviceOf names the device of a network-status device-info (NPWG §A.9):
// its PCI address, or for vDPA, vhost-user and memif devices type:path.
func DeviceOf(info json.RawMessage) string {
	if len(info) == 0 {
		return ""
	}
	var d struct {
		Type string `json:"type"`
		PCI  struct {
			Address string `json:"pci-address"`
		} `json:"pci"`
		VDPA struct {
			Path string `json:"path"`
		} `json:"vdpa"`
		VhostUser struct {
			Path string `json:"path"`
		} `json:"vhost-user"`
		Memif struct {
			Path string `json:"path"`
		} `json:"memif"`
	}
	if json.Unmarshal(info, &d) != nil {
		return ""
	}
	if d.PCI.Address != "" {
		return d.PCI.Address
	}
	for _, v := range []string{d.VDPA.Path, d.VhostUser.Path, d.Memif.Path} {
		if v != "" {
			return d.Type + ":" + v
		}
	}
	return d.Type
}
