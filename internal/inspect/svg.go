package inspect

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// Layout of the SVG: networks in a left column, pods in a right column,
// one curve per attachment labelled next to the pod it reaches.
const (
	svgWidth   = 1000
	marginTop  = 64
	netX       = 30
	netW       = 300
	netH       = 46
	podX       = 660
	podW       = 310
	labelRowH  = 16 // per interface of a pod
	podMinRowH = 30
	podGap     = 8
)

// palette colours networks (index modulo its length), readable on white.
var palette = [...]string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"}

type box struct{ y, h int }

// layout places pods (rows sized by their edge count) and networks (spread
// over the same height) and returns the picture's height.
func (g *Graph) layout() (nets, pods []box, height int) {
	perPod := make([]int, len(g.Pods))
	for _, e := range g.Edges {
		perPod[e.Pod]++
	}
	y := marginTop
	for _, n := range perPod {
		h := max(podMinRowH, n*labelRowH+8)
		pods = append(pods, box{y, h})
		y += h + podGap
	}
	podsEnd := y
	need := len(g.Networks) * (netH + 24)
	span := max(podsEnd-marginTop, need)
	for i := range g.Networks {
		slot := span / max(len(g.Networks), 1)
		nets = append(nets, box{marginTop + i*slot + (slot-netH)/2, netH})
	}
	return nets, pods, marginTop + span + 30
}

// WriteSVG draws the graph.
func (g *Graph) WriteSVG(w io.Writer) error {
	nets, pods, height := g.layout()
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`+"\n",
		svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#ffffff"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", netX, esc("plexus networks: "+g.Scope))
	fmt.Fprintf(&b, `<text x="%d" y="48" fill="#555555">%s</text>`+"\n", netX,
		esc(fmt.Sprintf("%d networks, %d pods, %d attachments (cluster network not shown)", len(g.Networks), len(g.Pods), len(g.Edges))))
	seen := make([]int, len(g.Pods))
	for i, e := range g.Edges {
		n, p := nets[e.Network], pods[e.Pod]
		y1 := n.y + n.h/2
		y2 := p.y + 4 + seen[e.Pod]*labelRowH + labelRowH/2
		seen[e.Pod]++
		c := palette[e.Network%len(palette)]
		fmt.Fprintf(&b, `<g class="edge" id="edge-%d" data-network="%d" data-pod="%d">`, i, e.Network, e.Pod)
		fmt.Fprintf(&b, `<path d="M %d %d C %d %d, %d %d, %d %d" fill="none" stroke="%s" stroke-width="1.6"/>`,
			netX+netW, y1, netX+netW+120, y1, podX-200, y2, podX-110, y2, c)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.6"/>`, podX-110, y2, podX, y2, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="%s">%s</text></g>`+"\n", podX-4, y2-3, c, esc(e.Label()))
	}
	for i, n := range g.Networks {
		c := palette[i%len(palette)]
		bx := nets[i]
		fmt.Fprintf(&b, `<g class="network" id="network-%d"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" fill-opacity="0.12" stroke="%s" stroke-width="2"/>`,
			i, netX, bx.y, netW, bx.h, c, c)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s</text>`, netX+10, bx.y+19, esc(clip(n.Name, 40)))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555555">%s</text></g>`+"\n", netX+10, bx.y+36, esc(clip(dash(n.Types), 44)))
	}
	for i, name := range g.Pods {
		bx := pods[i]
		fmt.Fprintf(&b, `<g class="pod" id="pod-%d"><rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="#f4f4f4" stroke="#444444"/>`,
			i, podX, bx.y, podW, bx.h)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text></g>`+"\n", podX+10, bx.y+bx.h/2+4, esc(clip(name, 44)))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s)) // writing to a Builder does not fail
	return b.String()
}

// clip shortens s to n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// WriteMermaid writes the graph as a Mermaid flowchart.
func (g *Graph) WriteMermaid(w io.Writer) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for i, n := range g.Networks {
		fmt.Fprintf(&b, "  n%d[\"%s<br/>%s\"]\n", i, mermaidText(n.Name), mermaidText(dash(n.Types)))
	}
	for i, p := range g.Pods {
		fmt.Fprintf(&b, "  p%d([\"%s\"])\n", i, mermaidText(p))
	}
	for _, e := range g.Edges {
		fmt.Fprintf(&b, "  n%d -- \"%s\" --> p%d\n", e.Network, mermaidText(e.Label()), e.Pod)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mermaidText escapes what would end a quoted Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}
