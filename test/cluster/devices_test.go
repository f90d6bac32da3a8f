package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/internal/testbed/poll"
	"github.com/plexus-cni/plexus/test/devices/devtest"
)

const (
	testnicResource = "plexus.dev/testnic"
	devNode         = "node-1"
	devinfoCNIDir   = "/var/run/k8s.cni.cncf.io/devinfo/cni"
)

// testnicNAD is an SR-IOV style network: its NAD names the resource, its
// plugin (the SR-IOV CNI stand-in) checks the injected deviceID and
// pciBusID, and declares the deviceID and CNIDeviceInfoFile capabilities.
const testnicNAD = `{"cniVersion":"1.0.0","name":"testnic","plugins":[
  {"type":"testnic-cni","capabilities":{"deviceID":true,"CNIDeviceInfoFile":true}}]}`

// testnicNADYAML is the NAD testnic with resourceName resource.
func testnicNADYAML(resource string) string {
	return fmt.Sprintf(`apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: testnic
  annotations: {k8s.v1.cni.cncf.io/resourceName: %s}
spec:
  config: '%s'
`, resource, testnicNAD)
}

// TestDeviceBackedNetwork runs a real device plugin on node-1, advertising
// veths made on the node as plexus.dev/testnic, and an SR-IOV style NAD:
// the admission webhook adds the resource to the pods, the kubelet
// allocates the devices, plexus hands each attachment its own device and
// the device-info, and deleting the pods gives the devices back.
func TestDeviceBackedNetwork(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "devices")
	devs := startTestnic(t, env, 3)
	env.ApplyYAML(t, ns, testnicNADYAML(testnicResource))

	waitInjection(t, env, ns)
	env.ApplyYAML(t, ns, nodeDeployment("vf", 2, "testnic", ""))
	pods := runningPods(t, env, ns, "app=vf", 2)
	seen := map[string]string{}
	for _, p := range pods {
		c := p.Spec.Containers[0]
		if q := c.Resources.Limits[testnicResource]; q.Value() != 1 {
			t.Errorf("pod %s: limits %v, want %s: 1 added by the webhook", p.Name, c.Resources.Limits, testnicResource)
		}
		info := deviceInfo(t, &p, "net1")
		addr, _ := info["pci"].(map[string]any)["pci-address"].(string)
		if info["type"] != "pci" || addr == "" || info["testnic-ifname"] != "net1" {
			t.Errorf("pod %s: device-info %v: want the device plugin's pci-address and the plugin's own key", p.Name, info)
		}
		if other, dup := seen[addr]; dup {
			t.Errorf("pods %s and %s got the same device %s", other, p.Name, addr)
		}
		seen[addr] = p.Name
		if out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "link", "show", "net1"); err != nil {
			t.Errorf("pod %s has no net1: %v %s", p.Name, err, out)
		}
	}
	// The operator's view: plexusctl get pods names each pod's device.
	out, err := exec.Command(filepath.Join(testbed.Root(), "bin", "plexusctl"), "--kubeconfig", env.Kubeconfig,
		"get", "pods", "-n", ns).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "DEVICE") {
		t.Fatalf("plexusctl get pods: %v\n%s", err, out)
	}
	for addr := range seen {
		if !strings.Contains(string(out), addr) {
			t.Errorf("plexusctl get pods does not show device %s:\n%s", addr, out)
		}
	}
	inPods := missingOnNode(t, devs)
	if len(inPods) != 2 {
		t.Fatalf("devices away from the node: %v, want 2 (one per pod)", inPods)
	}

	env.Kubectl(t, "-n", ns, "delete", "deployment", "vf", "--wait=true")
	poll.Until(t, podLimit, "pods of vf gone and their devices back on "+devNode, func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=vf"})
		if err != nil {
			return false, err.Error()
		}
		away := missingOnNode(t, devs)
		return len(list.Items) == 0 && len(away) == 0, fmt.Sprintf("%d pods, devices away %v", len(list.Items), away)
	})
	if files := nodeShellOut(t, "ls -A "+devinfoCNIDir+" 2>/dev/null | grep -c '^testnic-' || true"); strings.TrimSpace(files) != "0" {
		t.Fatalf("%s device-info files of testnic left on %s after the pods went", strings.TrimSpace(files), devNode)
	}
}

// TestDeviceShortageFailsThePod: a pod that asks for fewer devices than it
// has device-backed attachments (the webhook leaves a pod that sets the
// resource alone) stays ContainerCreating with plexus's error in the
// kubelet's event, and takes no device.
func TestDeviceShortageFailsThePod(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "devshort")
	devs := startTestnic(t, env, 2)
	env.ApplyYAML(t, ns, testnicNADYAML(testnicResource))
	for name, c := range map[string]struct {
		networks string
		count    int
		want     string
	}{
		"none":  {"testnic", 0, "has 0 of it allocated by the kubelet and 1 attachments"},
		"fewer": {"testnic,testnic", 1, "has 1 of it allocated by the kubelet and 2 attachments"},
	} {
		env.ApplyYAML(t, ns, nodeDeployment(name, 1, c.networks, fmt.Sprintf("%s: %d", testnicResource, c.count)))
		var msg string
		poll.Until(t, podLimit, "a FailedCreatePodSandBox event of "+name+" naming the resource", func() (bool, string) {
			list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=" + name})
			if err != nil || len(list.Items) != 1 {
				return false, fmt.Sprintf("pods: %v", err)
			}
			for _, e := range podEvents(t, env, ns, list.Items[0].Name) {
				if e.Reason == "FailedCreatePodSandBox" && strings.Contains(e.Message, testnicResource) {
					msg = e.Message
					return true, ""
				}
			}
			return false, "no event yet"
		})
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, ns+"/"+name) {
			t.Errorf("%s: event %q, want %q and the pod", name, msg, c.want)
		}
	}
	if away := missingOnNode(t, devs); len(away) != 0 {
		t.Fatalf("failed pods took devices %v", away)
	}
}

// waitInjection waits until the mutating webhook answers (plexus-controller
// fills its caBundle after it starts; until then its Ignore policy admits
// pods unchanged): a server-side dry run of a pod on testnic gets the
// resource.
func waitInjection(t *testing.T, env *testbed.Env, ns string) {
	t.Helper()
	probe := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Annotations: map[string]string{networksAnnotation: "testnic"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: toolbox}}},
	}
	poll.Until(t, time.Minute, "the mutating webhook adds "+testnicResource, func() (bool, string) {
		got, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return false, err.Error()
		}
		q := got.Spec.Containers[0].Resources.Limits[testnicResource]
		return q.Value() == 1, "limits " + q.String()
	})
}

// nodeDeployment is a Deployment on node-1 selecting networks, with
// resources (a YAML map entry, or "" to let the webhook add them).
func nodeDeployment(name string, replicas int, networks, resources string) string {
	res := ""
	if resources != "" {
		res = fmt.Sprintf("\n          resources: {requests: {%s}, limits: {%s}}", resources, resources)
	}
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
      nodeName: %[4]s
      terminationGracePeriodSeconds: 1
      containers:
        - name: toolbox
          image: %[5]s
          imagePullPolicy: IfNotPresent%[6]s
`, name, replicas, networks, devNode, toolbox, res)
}

// deviceInfo returns the device-info of pod's interface from network-status.
func deviceInfo(t *testing.T, pod *corev1.Pod, ifname string) map[string]any {
	t.Helper()
	var st []struct {
		Interface  string         `json:"interface"`
		DeviceInfo map[string]any `json:"device-info"`
	}
	if err := json.Unmarshal([]byte(pod.Annotations["k8s.v1.cni.cncf.io/network-status"]), &st); err != nil {
		t.Fatalf("pod %s: network-status: %v", pod.Name, err)
	}
	for _, e := range st {
		if e.Interface == ifname {
			if e.DeviceInfo == nil {
				t.Fatalf("pod %s: %s has no device-info in network-status", pod.Name, ifname)
			}
			return e.DeviceInfo
		}
	}
	t.Fatalf("pod %s: no %s in network-status", pod.Name, ifname)
	return nil
}

// startTestnic makes n devices on node-1, installs testnic-cni, runs
// testnic-dp advertising the devices inside the node, and waits until the
// node offers n devices. Everything is undone when the test ends.
func startTestnic(t *testing.T, env *testbed.Env, n int) []string {
	t.Helper()
	dir := t.TempDir()
	devtest.Build(t, dir)
	devs := nodeDevices(t, n)
	installTestnicCNI(t, dir)
	startOnNode(t, "testnic-dp", []string{"-m", "-n"}, filepath.Join(dir, devtest.DPName), "-devices", strings.Join(devs, ","))
	poll.Until(t, time.Minute, fmt.Sprintf("%s offers %d %s", devNode, n, testnicResource), func() (bool, string) {
		node, err := env.Client.CoreV1().Nodes().Get(t.Context(), devNode, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		q := node.Status.Allocatable[corev1.ResourceName(testnicResource)]
		return q.Value() == int64(n), "allocatable " + q.String()
	})
	return devs
}

// nodeDevices makes n veth pairs in node-1's network namespace and returns
// one end of each: the devices.
func nodeDevices(t *testing.T, n int) []string {
	t.Helper()
	var devs []string
	for i := range n {
		dev := fmt.Sprintf("tn%d%c", os.Getpid()%10000, 'a'+i)
		run(t, "ip", "-n", "plexus-cl-"+devNode, "link", "add", dev, "type", "veth", "peer", "name", dev+"p")
		t.Cleanup(func() { exec.Command("ip", "-n", "plexus-cl-"+devNode, "link", "del", dev+"p").Run() })
		devs = append(devs, dev)
	}
	return devs
}

// installTestnicCNI copies testnic-cni from dir into node-1's CNI bin dir.
func installTestnicCNI(t *testing.T, dir string) {
	t.Helper()
	pid := nodePID(t, devNode)
	run(t, "nsenter", "-t", pid, "-m", "cp", filepath.Join(dir, devtest.CNIName), "/opt/cni/bin/"+devtest.CNIName)
	t.Cleanup(func() { exec.Command("nsenter", "-t", pid, "-m", "rm", "-f", "/opt/cni/bin/"+devtest.CNIName).Run() })
}

// startOnNode runs a program in node-1's namespaces (nsenter's flags
// nsFlags), stops it with SIGTERM when the test ends, and shows its log on
// failure.
func startOnNode(t *testing.T, name string, nsFlags []string, args ...string) {
	t.Helper()
	cmd := exec.Command("nsenter", append(append([]string{"-t", nodePID(t, devNode)}, nsFlags...), args...)...)
	var log bytes.Buffer
	cmd.Stderr = &log // shown when the test fails
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, log.String())
			}
		}()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// missingOnNode lists the devices not in node-1's network namespace.
func missingOnNode(t *testing.T, devs []string) []string {
	t.Helper()
	var away []string
	for _, d := range devs {
		if exec.Command("ip", "-n", "plexus-cl-"+devNode, "link", "show", d).Run() != nil {
			away = append(away, d)
		}
	}
	return away
}

// nodePID is a process in node's network and mount namespaces (its kubelet).
func nodePID(t *testing.T, node string) string {
	t.Helper()
	out, err := exec.Command("pgrep", "-f", "kubelet .*--hostname-override="+node+"( |$)").Output()
	pids := strings.Fields(string(out))
	if err != nil || len(pids) == 0 {
		t.Fatalf("no kubelet of %s: %v", node, err)
	}
	return pids[0]
}

// nodeShellOut runs a shell command in node-1's mount namespace.
func nodeShellOut(t *testing.T, cmd string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "-t", nodePID(t, devNode), "-m", "sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", devNode, cmd, err, out)
	}
	return string(out)
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDRADeviceBackedNetwork: a real DRA driver on node-1 publishes the
// node's veths in a ResourceSlice with the k8s.cni.cncf.io attributes; pods
// claim one each through a ResourceClaimTemplate (the scheduler allocates,
// the kubelet prepares through the driver), and plexus finds each pod's
// device from its claim and hands it to the network of that resourceName.
func TestDRADeviceBackedNetwork(t *testing.T) {
	env := cluster(t)
	ns := env.Namespace(t, "dra")
	const driver, resource = "nic.plexus.dev", "plexus.dev/testnic-dra"
	dir := t.TempDir()
	devtest.Build(t, dir)
	devs := nodeDevices(t, 2)
	installTestnicCNI(t, dir)
	startOnNode(t, "testnic-dra", []string{"-m"}, filepath.Join(dir, devtest.DRAName),
		"-node", devNode, "-kubeconfig", env.Kubeconfig, "-driver", driver, "-resource", resource, "-devices", strings.Join(devs, ","))
	poll.Until(t, time.Minute, "the driver's ResourceSlice of "+devNode, func() (bool, string) {
		list, err := env.Client.ResourceV1().ResourceSlices().List(t.Context(), metav1.ListOptions{
			FieldSelector: "spec.driver=" + driver + ",spec.nodeName=" + devNode})
		if err != nil || len(list.Items) != 1 {
			return false, fmt.Sprintf("%v", err)
		}
		return len(list.Items[0].Spec.Devices) == len(devs), fmt.Sprintf("%d devices", len(list.Items[0].Spec.Devices))
	})
	class := "testnic-" + ns
	env.ApplyYAML(t, "", fmt.Sprintf(`apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: %s}
spec:
  selectors: [{cel: {expression: 'device.driver == "%s"'}}]
`, class, driver))
	t.Cleanup(func() { // t.Context() has ended by now
		if out, err := env.TryKubectl(context.Background(), "delete", "deviceclass", class, "--ignore-not-found"); err != nil {
			t.Errorf("delete DeviceClass %s: %v %s", class, err, out)
		}
	})
	env.ApplyYAML(t, ns, fmt.Sprintf(`apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: nic}
spec:
  spec:
    devices:
      requests: [{name: nic, exactly: {deviceClassName: %s}}]
---
%s---
apiVersion: apps/v1
kind: Deployment
metadata: {name: dra}
spec:
  replicas: 2
  selector: {matchLabels: {app: dra}}
  template:
    metadata:
      labels: {app: dra}
      annotations: {k8s.v1.cni.cncf.io/networks: testnic}
    spec:
      nodeSelector: {kubernetes.io/hostname: %s}
      terminationGracePeriodSeconds: 1
      resourceClaims: [{name: nic, resourceClaimTemplateName: nic}]
      containers:
        - name: toolbox
          image: %s
          imagePullPolicy: IfNotPresent
          resources: {claims: [{name: nic}]}
`, class, testnicNADYAML(resource), devNode, toolbox))
	pods := runningPods(t, env, ns, "app=dra", 2)
	for _, p := range pods {
		if _, ok := p.Spec.Containers[0].Resources.Limits[corev1.ResourceName(resource)]; ok {
			t.Errorf("pod %s got the extended resource %s: the webhook must leave pods with claims alone", p.Name, resource)
		}
		if out, err := env.Exec(t.Context(), ns, p.Name, "ip", "-o", "link", "show", "net1"); err != nil {
			t.Errorf("pod %s has no net1: %v %s", p.Name, err, out)
		}
	}
	if away := missingOnNode(t, devs); len(away) != 2 {
		t.Fatalf("devices away from the node: %v, want both (one per pod)", away)
	}
	env.Kubectl(t, "-n", ns, "delete", "deployment", "dra", "--wait=true")
	poll.Until(t, podLimit, "pods of dra gone and their devices back on "+devNode, func() (bool, string) {
		list, err := env.Client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=dra"})
		if err != nil {
			return false, err.Error()
		}
		away := missingOnNode(t, devs)
		return len(list.Items) == 0 && len(away) == 0, fmt.Sprintf("%d pods, devices away %v", len(list.Items), away)
	})
}
