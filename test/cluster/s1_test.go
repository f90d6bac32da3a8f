package cluster

import (
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
)

// S1 on real pods: a Deployment of three across both nodes, each with net1 on
// the macvlan NAD of the published guides (TEST-NET addresses, the nodes'
// uplink as master). Every pod carries network-status and an AddedInterface
// event per interface, and the net1 addresses reach each other across nodes
// and the host outside the cluster on the same segment.
func TestS1MacvlanDeployment(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "s1")
	env.CreateNAD(t, ns, "macvlan-conf", fmt.Sprintf(`{"cniVersion":"0.3.0","type":"macvlan",
		"master":%q,"mode":"bridge","ipam":{"type":"host-local","subnet":%q,
		"rangeStart":"198.51.100.65","rangeEnd":"198.51.100.81","routes":[{"dst":"0.0.0.0/0"}],
		"gateway":%q,"dataDir":%q}}`, nodeUplink, macvlanCIDR, extHost, sharedHostLocalDir(t)))
	env.ApplyYAML(t, ns, deployment("samplepod", 3, "macvlan-conf"))
	pods := runningPods(t, env, ns, "app=samplepod", 3)

	nodes := map[string]bool{}
	subnet := netip.MustParsePrefix(macvlanCIDR)
	var net1 []string
	for _, p := range pods {
		nodes[p.Spec.NodeName] = true
		st := statusOf(t, &p)
		if len(st) != 2 || !st[0].Default || st[0].Interface != "eth0" {
			t.Fatalf("pod %s network-status = %+v, want the cluster network on eth0 first, then net1", p.Name, st)
		}
		if st[1].Name != ns+"/macvlan-conf" || st[1].Interface != "net1" || st[1].MAC == "" || len(st[1].IPs) != 1 {
			t.Fatalf("pod %s second network-status entry = %+v, want %s/macvlan-conf on net1 with a MAC and one IP", p.Name, st[1], ns)
		}
		ip, err := netip.ParseAddr(st[1].IPs[0])
		if err != nil || !subnet.Contains(ip) {
			t.Fatalf("pod %s net1 address %q is not in %s", p.Name, st[1].IPs[0], subnet)
		}
		out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "addr", "show", "net1")
		if err != nil || !strings.Contains(out, ip.String()+"/26") {
			t.Fatalf("pod %s: `ip addr show net1` = %q, %v; want %s/26", p.Name, out, err, ip)
		}
		added := 0
		for _, e := range podEvents(t, env, ns, p.Name) {
			if e.Reason == "AddedInterface" {
				added++
			}
		}
		if added != 2 {
			t.Errorf("pod %s has %d AddedInterface events, want 2 (eth0, net1)", p.Name, added)
		}
		net1 = append(net1, ip.String())
	}
	// host-local's leases are shared by both nodes here (a dataDir under the
	// host's /tmp, which delegates see through plexusd's delegateRoot): no
	// address on two pods.
	net1Addresses(t, pods)
	if len(nodes) != 2 {
		t.Fatalf("pods run on %d nodes, want both: %v", len(nodes), nodes)
	}
	for _, p := range pods {
		for _, dst := range append([]string{extHost}, net1...) {
			if out, err := env.Exec(t.Context(), ns, p.Name, "ping", "-c", "1", "-W", "3", dst); err != nil {
				t.Errorf("pod %s (node %s) cannot ping %s over net1: %v\n%s", p.Name, p.Spec.NodeName, dst, err, out)
			}
		}
	}
	// The operator's view of where those ADDs spent their time, read from
	// the node's plexusd through the API server.
	node := pods[0].Spec.NodeName
	out, err := exec.Command(filepath.Join(testbed.Root(), "bin", "plexusctl"), "--kubeconfig", env.Kubeconfig,
		"latency", node).CombinedOutput()
	if err != nil {
		t.Fatalf("plexusctl latency %s: %v\n%s", node, err, out)
	}
	for _, want := range []string{"delegate   macvlan", "plan ", "status ", "ADDs; plexus's own phases"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("plexusctl latency %s lacks %q:\n%s", node, want, out)
		}
	}
}

// deployment is a Deployment of the toolbox image whose pods select the
// networks annotation and spread over both nodes.
func deployment(name string, replicas int, networks string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
  selector: {matchLabels: {app: %[1]s}}
  template:
    metadata:
      labels: {app: %[1]s}
      annotations: {k8s.v1.cni.cncf.io/networks: %[3]q}
    spec:
      terminationGracePeriodSeconds: 1
      topologySpreadConstraints:
        - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule,
           labelSelector: {matchLabels: {app: %[1]s}}}
      containers:
        - name: toolbox
          image: %[4]s
          imagePullPolicy: IfNotPresent
`, name, replicas, networks, toolbox)
}
