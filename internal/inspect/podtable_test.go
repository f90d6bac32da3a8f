package inspect

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/netstatus"
)

func TestPodsTableShowsDevices(t *testing.T) {
	pods := []Pod{{Name: "vf", Interfaces: []netstatus.Entry{
		{Name: "cbr0", Interface: "eth0", Default: true},
		{Name: "ns/sriov", Interface: "net1", DeviceInfo: json.RawMessage(`{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:00.2"}}`)},
		{Name: "ns/vhost", Interface: "net2", DeviceInfo: json.RawMessage(`{"type":"vhost-user","version":"1.1.0","vhost-user":{"mode":"client","path":"/var/run/vu.sock"}}`)},
	}}}
	var b bytes.Buffer
	if err := WritePodsTable(&b, pods, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if !strings.HasSuffix(strings.TrimSpace(lines[0]), "DEVICE") || !strings.HasSuffix(lines[1], " -") ||
		!strings.HasSuffix(lines[2], "0000:03:00.2") || !strings.HasSuffix(lines[3], "vhost-user:/var/run/vu.sock") {
		t.Fatalf("table:\n%s", b.String())
	}
	b.Reset()
	pods[0].Interfaces = pods[0].Interfaces[:1]
	if err := WritePodsTable(&b, pods, TableOptions{}); err != nil || strings.Contains(b.String(), "DEVICE") {
		t.Fatalf("a table without devices has the DEVICE column (%v):\n%s", err, b.String())
	}
}
