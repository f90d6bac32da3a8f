package main

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/buildinfo"
	"github.com/plexus-cni/plexus/internal/inspect"
	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/ipam/store"
	"github.com/plexus-cni/plexus/pkg/ipam/store/kubestore"
)

// clusterFixture creates, in a fresh namespace, three NADs (one with a
// plexus-ipam pool holding two allocations) and four pods with
// network-status. It returns the namespace.
func clusterFixture(t *testing.T, env *testbed.Env) string {
	t.Helper()
	ns := env.Namespace(t, "ctl")
	env.CreateNAD(t, ns, "macvlan-conf", `{"cniVersion":"0.3.0","type":"macvlan","master":"lo","mode":"bridge","ipam":{"type":"host-local","subnet":"192.0.2.0/24","rangeStart":"192.0.2.200","rangeEnd":"192.0.2.216"}}`)
	env.CreateNAD(t, ns, "pool-net", `{"cniVersion":"0.3.1","type":"macvlan","master":"plexus-absent0","ipam":{"type":"plexus-ipam","range":"198.51.100.0/24","range_start":"198.51.100.100","range_end":"198.51.100.109","network_name":"pool","kubernetes":{"namespace":"`+ns+`"}}}`)
	env.CreateNAD(t, ns, "idle-net", `{"cniVersion":"0.3.1","type":"bridge","bridge":"br9","ipam":{"type":"static"}}`)
	status := func(entries ...string) string {
		return `[{"name":"cbr0","interface":"eth0","ips":["10.244.0.9"],"mac":"0a:00:00:00:00:09","default":true,"dns":{}}` + strings.Join(entries, "") + "]"
	}
	entry := func(net, ifname, ip, mac string) string {
		return `,{"name":"` + ns + "/" + net + `","interface":"` + ifname + `","ips":["` + ip + `"],"mac":"` + mac + `","dns":{}}`
	}
	pods := map[string]string{
		"samplepod": status(entry("macvlan-conf", "net1", "192.0.2.200", "02:00:00:00:00:01")),
		"twice":     status(entry("macvlan-conf", "net1", "192.0.2.201", "02:00:00:00:00:02"), entry("macvlan-conf", "net2", "192.0.2.202", "02:00:00:00:00:03")),
		"pooled":    status(entry("pool-net", "net1", "198.51.100.100", "02:00:00:00:00:04"), entry("macvlan-conf", "net2", "192.0.2.203", "02:00:00:00:00:05")),
		"plain":     "",
	}
	for name, st := range pods {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/none"}}}}
		if st != "" {
			p.Annotations = map[string]string{"k8s.v1.cni.cncf.io/network-status": st}
		}
		if _, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := kubestore.New(env.RESTConfig, kubestore.Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err = ks.Import(t.Context(), []store.Allocation{
		{Space: "net:pool", Address: netip.MustParseAddr("198.51.100.100"), Holder: store.Holder{ContainerID: "c1", IfName: "net1",
			Network: "pool-net", PodNamespace: ns, PodName: "pooled", Node: "node-a", Created: created}},
		{Space: "net:pool", Address: netip.MustParseAddr("198.51.100.101"), Holder: store.Holder{ContainerID: "c2", IfName: "net1",
			Network: "pool-net", Node: "node-b", Created: created}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// normalize replaces the generated names with fixed ones for goldens.
func normalize(s string, repl ...string) []byte {
	return []byte(strings.NewReplacer(repl...).Replace(s))
}

func TestClusterVerbs(t *testing.T) {
	env := testbed.Require(t)
	ns := clusterFixture(t, env)
	kc := "--kubeconfig=" + env.Kubeconfig
	tests := []struct {
		golden string
		args   []string
	}{
		{"get-pods.text.golden", []string{"get", "pods", "-n", ns, kc}},
		{"get-pods.json.golden", []string{"get", "pods", "-n", ns, "-o", "json", kc}},
		{"describe-pool.text.golden", []string{"describe", "network", ns + "/pool-net", kc}},
		{"describe-macvlan.text.golden", []string{"describe", "network", "-n", ns, "macvlan-conf", kc}},
		// Under namespace isolation only ns's pods are read: the same pods.
		{"describe-macvlan.text.golden", []string{"describe", "network", "-n", ns, "macvlan-conf", "--namespace-isolation", kc}},
		{"describe-pool.yaml.golden", []string{"describe", "network", ns + "/pool-net", "-o", "yaml", kc}},
		{"graph.mermaid.golden", []string{"graph", "-n", ns, "-o", "mermaid", kc}},
		{"graph.svg.golden", []string{"graph", "-n", ns, kc}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			stdout, stderr, code := runCmd(t, "", tt.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			checkGolden(t, tt.golden, normalize(stdout, ns, "NS"))
		})
	}
	t.Run("graph structure", func(t *testing.T) {
		stdout, _, _ := runCmd(t, "", "graph", "-n", ns, kc)
		var doc struct {
			Groups []struct {
				Class string `xml:"class,attr"`
			} `xml:"g"`
		}
		if err := xml.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, g := range doc.Groups {
			count[g.Class]++
		}
		if count["network"] != 3 || count["pod"] != 4 || count["edge"] != 5 {
			t.Errorf("graph has %v, want 3 networks, 4 pods, 5 edges", count)
		}
	})
	t.Run("missing network", func(t *testing.T) {
		_, stderr, code := runCmd(t, "", "describe", "network", ns+"/absent", kc)
		if code != exitInvalid || !strings.Contains(stderr, "NetworkAttachmentDefinition "+ns+"/absent") {
			t.Errorf("exit %d, stderr %q; want 1 naming the network", code, stderr)
		}
	})
}

// doctorNode lays out a node in temp dirs: conf dir with plexus's
// conflist first, bin dir with some plugins, a readiness file.
func doctorNode(t *testing.T, kubeconfig string, binaries ...string) (confDir, binDir string) {
	t.Helper()
	dir := t.TempDir()
	confDir, binDir = filepath.Join(dir, "net.d"), filepath.Join(dir, "bin")
	for _, d := range []string{confDir, binDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ready := filepath.Join(dir, "ready")
	conf := `{"cniVersion":"1.0.0","name":"plexus-network","plugins":[{"type":"plexus","clusterNetwork":"` + filepath.Join(confDir, "10-cluster.conflist") +
		`","kubeconfig":"` + kubeconfig + `","readinessindicatorfile":"` + ready + `","binDir":"` + binDir + `"}]}`
	files := map[string]string{
		filepath.Join(confDir, "00-plexus.conflist"):  conf,
		filepath.Join(confDir, "10-cluster.conflist"): `{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"bridge","bridge":"cbr0","ipam":{"type":"host-local","subnet":"10.244.0.0/24"}},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
		ready: "",
	}
	for f, c := range files {
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range binaries {
		if err := os.WriteFile(filepath.Join(binDir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return confDir, binDir
}

func TestDoctor(t *testing.T) {
	env := testbed.Require(t)
	ns := clusterFixture(t, env)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Write([]byte("ok"))
			return
		}
		http.NotFound(w, r)
	}))
	defer healthy.Close()

	t.Run("problems", func(t *testing.T) {
		confDir, binDir := doctorNode(t, env.Kubeconfig, "plexus", "bridge", "portmap", "host-local", "macvlan")
		stdout, stderr, code := runCmd(t, "", "doctor", "--conf-dir", confDir, "--daemon-url", "http://127.0.0.1:1", "-n", ns)
		if code != exitInvalid {
			t.Errorf("exit %d, want 1 (stderr %q)", code, stderr)
		}
		// Paths vary in length: compare with the columns' padding collapsed.
		out := normalize(stdout, filepath.Dir(confDir), "TMP", env.Kubeconfig, "KUBECONFIG", ns, "NS")
		checkGolden(t, "doctor-problems.text.golden", regexp.MustCompile(` {2,}`).ReplaceAll(out, []byte("  ")))
		if !strings.Contains(stdout, "FAIL  binary      "+filepath.Join(binDir, "static")) {
			t.Errorf("output does not name the missing binary %s", filepath.Join(binDir, "static"))
		}
	})
	// pool-net names no store: doctor finds the defaults plexusd wrote into
	// the conf dir, checks the kubeconfig they name and that the store
	// answers; a kubeconfig that is gone fails.
	t.Run("ipam store from plexusd's defaults", func(t *testing.T) {
		confDir, _ := doctorNode(t, env.Kubeconfig, "plexus")
		dir := filepath.Join(confDir, "plexus-ipam.d")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		flat := func(kubeconfig string) {
			if err := os.WriteFile(filepath.Join(dir, "plexus-ipam.conf"), []byte(`{"kubernetes":{"kubeconfig":"`+kubeconfig+`"}}`), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		collapse := regexp.MustCompile(` {2,}`)
		flat(env.Kubeconfig)
		stdout, _, _ := runCmd(t, "", "doctor", "--conf-dir", confDir, "-n", ns)
		stdout = collapse.ReplaceAllString(stdout, "  ")
		for _, want := range []string{
			"OK  ipam  " + env.Kubeconfig + "  plexus-ipam kubeconfig (used by " + ns + "/pool-net) present",
			"OK  ipam store  kubernetes " + env.Kubeconfig + " (namespace " + ns + ")  answers (used by " + ns + "/pool-net)",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
		gone := filepath.Join(dir, "gone.kubeconfig")
		flat(gone)
		stdout, _, code := runCmd(t, "", "doctor", "--conf-dir", confDir, "-n", ns)
		stdout = collapse.ReplaceAllString(stdout, "  ")
		if code != exitInvalid || !strings.Contains(stdout, "FAIL  ipam  "+gone) || !strings.Contains(stdout, "FAIL  ipam store") {
			t.Errorf("exit %d, output\n%s\nwant the missing kubeconfig and the store failing", code, stdout)
		}
	})
	t.Run("healthy", func(t *testing.T) {
		confDir, _ := doctorNode(t, env.Kubeconfig, "plexus", "bridge", "portmap", "host-local", "macvlan", "plexus-ipam", "plexus-ipam-local", "static")
		if err := os.WriteFile(filepath.Join(confDir, "99-other.conf"), []byte(`{"type":"bridge"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		env.DeleteNAD(t, ns, "pool-net") // its master does not exist on this machine
		stdout, stderr, code := runCmd(t, "", "doctor", "--conf-dir", confDir, "--daemon-url", healthy.URL, "-n", ns, "-o", "json")
		if code != 0 {
			t.Errorf("exit %d, want 0 (stderr %q)\n%s", code, stderr, stdout)
		}
		if !strings.Contains(stdout, `"subject": "`+healthy.URL+`/healthz"`) {
			t.Errorf("no daemon health finding in\n%s", stdout)
		}
		if strings.Contains(stdout, `"status": "warn"`) {
			t.Errorf("a plexusd that does not say its version gets a warning:\n%s", stdout)
		}
	})
	t.Run("another plexusd version", func(t *testing.T) {
		older := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set(buildinfo.Header, "v0.0.1-older")
			w.Write([]byte("ok"))
		}))
		defer older.Close()
		confDir, _ := doctorNode(t, env.Kubeconfig, "plexus")
		stdout, _, _ := runCmd(t, "", "doctor", "--conf-dir", confDir, "--daemon-url", older.URL, "-n", ns, "-o", "json")
		var findings []inspect.Finding
		if err := json.Unmarshal([]byte(stdout), &findings); err != nil {
			t.Fatalf("%v in\n%s", err, stdout)
		}
		want := inspect.Finding{Status: inspect.Warn, Check: "version", Subject: older.URL + "/healthz",
			Message: "plexusctl " + buildinfo.Version + " talks to plexusd at " + older.URL + " v0.0.1-older: versions differ; upgrade the older one"}
		if !slices.Contains(findings, want) {
			t.Errorf("want %+v in\n%s", want, stdout)
		}
	})
	t.Run("another config sorts first", func(t *testing.T) {
		confDir, _ := doctorNode(t, env.Kubeconfig, "plexus")
		if err := os.WriteFile(filepath.Join(confDir, "00-aaa.conf"), []byte(`{"type":"bridge"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, _, code := runCmd(t, "", "doctor", "--conf-dir", confDir, "-n", ns)
		if code != exitInvalid || !strings.Contains(stdout, "plexus configuration is not the first in "+confDir+": the runtime uses "+filepath.Join(confDir, "00-aaa.conf")) {
			t.Errorf("exit %d, output\n%s", code, stdout)
		}
	})
}
