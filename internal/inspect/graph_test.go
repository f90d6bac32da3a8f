package inspect

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/netstatus"
)

// bigNamespace is 30 pods on 5 networks: pod i is on network i%5, and
// every third pod also on network (i+2)%5.
func bigNamespace() ([]Pod, map[string]string, int) {
	nads := map[string]string{}
	for n := range 5 {
		nads[fmt.Sprintf("tomcat/net-%d", n)] = "macvlan"
	}
	var pods []Pod
	edges := 0
	for i := range 30 {
		p := Pod{Namespace: "tomcat", Name: fmt.Sprintf("web-%02d", i),
			Interfaces: []netstatus.Entry{{Name: "cbr0", Interface: "eth0", IPs: []string{fmt.Sprintf("10.244.0.%d", i+2)}, Default: true}}}
		nets := []int{i % 5}
		if i%3 == 0 {
			nets = append(nets, (i+2)%5)
		}
		for k, n := range nets {
			p.Interfaces = append(p.Interfaces, netstatus.Entry{Name: fmt.Sprintf("tomcat/net-%d", n), Interface: fmt.Sprintf("net%d", k+1),
				IPs: []string{fmt.Sprintf("198.51.100.%d", 10*n+i%10+1)}})
			edges++
		}
		pods = append(pods, p)
	}
	return pods, nads, edges
}

type svgDoc struct {
	Width  int    `xml:"width,attr"`
	Height int    `xml:"height,attr"`
	Groups []svgG `xml:"g"`
	Texts  []struct {
		Body string `xml:",chardata"`
	} `xml:"text"`
}

type svgG struct {
	Class   string `xml:"class,attr"`
	Network int    `xml:"data-network,attr"`
	Pod     int    `xml:"data-pod,attr"`
	Texts   []struct {
		Body string `xml:",chardata"`
	} `xml:"text"`
}

func TestGraphSVG(t *testing.T) {
	pods, nads, edges := bigNamespace()
	g := NewGraph("tomcat", pods, nads)
	var buf bytes.Buffer
	if err := g.WriteSVG(&buf); err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("SVG is not XML: %v", err)
	}
	count := map[string]int{}
	for _, grp := range doc.Groups {
		count[grp.Class]++
		if grp.Class == "edge" {
			if label := grp.Texts[0].Body; !strings.HasPrefix(label, "net") || !strings.Contains(label, "198.51.100.") {
				t.Errorf("edge label %q, want interface and IP", label)
			}
		}
	}
	if count["network"] != 5 || count["pod"] != 30 || count["edge"] != edges {
		t.Errorf("nodes and edges = %v, want 5 networks, 30 pods, %d edges", count, edges)
	}
	var again bytes.Buffer
	if err := NewGraph("tomcat", pods, nads).WriteSVG(&again); err != nil || !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two renderings of the same graph differ")
	}
	checkPNG(t, buf.Bytes(), doc.Width, doc.Height)
}

// checkPNG renders the SVG with rsvg-convert and checks the picture's size
// and that it has ink of several colours.
func checkPNG(t *testing.T, svg []byte, width, height int) {
	t.Helper()
	bin, err := exec.LookPath("rsvg-convert")
	if err != nil {
		t.Skip("rsvg-convert not installed (Debian package librsvg2-bin)")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "g.svg"), filepath.Join(dir, "g.png")
	if err := os.WriteFile(in, svg, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, err := exec.Command(bin, "-o", out, in).CombinedOutput(); err != nil {
		t.Fatalf("rsvg-convert: %v: %s", err, msg)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Errorf("PNG is %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	colours := map[[3]uint32]int{}
	ink := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 12, g >> 12, bl >> 12}]++
			if r < 0xc000 || g < 0xc000 || bl < 0xc000 {
				ink++
			}
		}
	}
	if total := (b.Dx() / 2) * (b.Dy() / 2); ink < total/100 || len(colours) < 6 {
		t.Errorf("PNG looks blank: %d of %d sampled pixels inked, %d colours", ink, total, len(colours))
	}
}

func TestGraphMermaid(t *testing.T) {
	pods := []Pod{{Namespace: "ns", Name: `a"b`, Interfaces: []netstatus.Entry{
		{Name: "ns/net", Interface: "net1", IPs: []string{"192.0.2.5"}}, {Name: "cbr0", Interface: "eth0", Default: true}}}}
	var buf bytes.Buffer
	if err := NewGraph("ns", pods, map[string]string{"ns/net": "macvlan", "ns/idle": "bridge"}).WriteMermaid(&buf); err != nil {
		t.Fatal(err)
	}
	want := "flowchart LR\n  n0[\"ns/idle<br/>bridge\"]\n  n1[\"ns/net<br/>macvlan\"]\n  p0([\"ns/a#quot;b\"])\n  n1 -- \"net1 192.0.2.5\" --> p0\n"
	if buf.String() != want {
		t.Errorf("mermaid\n got %q\nwant %q", buf.String(), want)
	}
}
