package cluster

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed/poll"
)

// S7 (`make bench`): TCP throughput between two pods over net1, macvlans
// that plexus made on node-1's uplink, against the same two pods over a
// second pair of macvlans made by hand on the same master and moved into
// them (another subnet, so each pair carries its own traffic). The same
// processes in the same cgroups: only who made the interface differs.
// Rounds alternate; medians are compared. Run only with PLEXUS_BENCH=1.
func TestBenchS7Throughput(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") == "" {
		t.Skip("a benchmark: run by `make bench` (PLEXUS_BENCH=1)")
	}
	env := cluster(t)
	ns := env.Namespace(t, "s7")
	env.CreateNAD(t, ns, "macvlan-conf", macvlanNAD(t))
	const node = "node-1"
	pods := map[string]corev1.Pod{}
	for _, name := range []string{"server", "client"} {
		env.ApplyYAML(t, ns, strings.Replace(toolboxPod(name, map[string]string{networksAnnotation: "macvlan-conf"}),
			"spec:\n", "spec:\n  nodeSelector: {kubernetes.io/hostname: "+node+"}\n", 1))
	}
	for _, name := range []string{"server", "client"} {
		pods[name] = runningPod(t, env, ns, name)
	}
	byPlexus := net1Addresses(t, []corev1.Pod{pods["server"]})[0]
	const byHand = "198.51.100.201"
	handMacvlan(t, node, pods["server"], "s7hand", byHand+"/26")
	handMacvlan(t, node, pods["client"], "s7hand", "198.51.100.202/26")

	rate := map[string][]float64{}
	for _, dst := range []string{byPlexus, byHand} {
		if out, err := env.Exec(t.Context(), ns, "server", "sh", "-c", "netbench -s -l "+dst+":5201 >/dev/null 2>&1 &"); err != nil {
			t.Fatalf("starting netbench on %s in the server pod: %v\n%s", dst, err, out)
		}
		poll.Until(t, 30*time.Second, "the server on "+dst+" answers", func() (bool, string) {
			out, err := env.Exec(t.Context(), ns, "client", "netbench", "-c", dst+":5201", "-t", "100ms")
			return err == nil, fmt.Sprint(err, out)
		})
	}
	const rounds = 5
	for r := range rounds {
		for _, dst := range []string{byPlexus, byHand} {
			out, err := env.Exec(t.Context(), ns, "client", "netbench", "-c", dst+":5201", "-t", "3s")
			if err != nil {
				t.Fatalf("round %d to %s: %v\n%s", r, dst, err, out)
			}
			rate[dst] = append(rate[dst], gbps(t, out))
		}
	}
	p, h := median(rate[byPlexus]), median(rate[byHand])
	fmt.Printf("S7 TCP throughput between two pods on %s over macvlans on its %s, median of %d rounds of 3 s:\n", node, nodeUplink, rounds)
	fmt.Printf("  net1, made by plexus      %7.2f Gbit/s  %v\n", p, rate[byPlexus])
	fmt.Printf("  macvlan made by hand      %7.2f Gbit/s  %v\n", h, rate[byHand])
	fmt.Printf("  ratio plexus/by hand      %7.2f\n", p/h)
}

// handMacvlan makes a macvlan on node's uplink by hand (bridge mode), moves
// it into pod's network namespace as link with address addr and brings it
// up. It goes away with the pod.
func handMacvlan(t *testing.T, node string, pod corev1.Pod, link, addr string) {
	t.Helper()
	pid := podPID(t, node, pod)
	tmp := fmt.Sprintf("s7h%d", os.Getpid()%100000)
	for _, args := range [][]string{
		{"ip", "-n", "plexus-cl-" + node, "link", "add", tmp, "link", nodeUplink, "type", "macvlan", "mode", "bridge"},
		{"ip", "-n", "plexus-cl-" + node, "link", "set", tmp, "netns", pid},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", tmp, "name", link},
		{"nsenter", "-t", pid, "-n", "ip", "addr", "add", addr, "dev", link},
		{"nsenter", "-t", pid, "-n", "ip", "link", "set", link, "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// podPID returns a process of pod's on node (any, the pause one included).
func podPID(t *testing.T, node string, pod corev1.Pod) string {
	t.Helper()
	return podProcess(t, node, pod, "")
}

// gbps reads netbench's "bytes=N seconds=S gbps=G" line.
func gbps(t *testing.T, out string) float64 {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, "gbps="); ok {
			g, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return g
			}
		}
	}
	t.Fatalf("no gbps= in netbench's output %q", out)
	return 0
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// Pod create → Running on the real cluster (`make bench`), one pod at a
// time, without secondary networks and with net1 (macvlan + host-local)
// through plexus; then the memory of plexusd in its real pods.
func TestBenchPodStartup(t *testing.T) {
	if os.Getenv("PLEXUS_BENCH") == "" {
		t.Skip("a benchmark: run by `make bench` (PLEXUS_BENCH=1)")
	}
	env := cluster(t)
	ns := env.Namespace(t, "startup")
	env.CreateNAD(t, ns, "macvlan-conf", macvlanNAD(t))
	const pods = 10
	took := map[string][]float64{}
	for i := range 2 * pods {
		kind, ann := "eth0 only", map[string]string{}
		if i%2 == 1 {
			kind, ann = "eth0 + net1", map[string]string{networksAnnotation: "macvlan-conf"}
		}
		name := fmt.Sprintf("p%d", i)
		start := time.Now()
		env.ApplyYAML(t, ns, toolboxPod(name, ann))
		runningPod(t, env, ns, name)
		took[kind] = append(took[kind], time.Since(start).Seconds()*1000)
		env.Kubectl(t, "-n", ns, "delete", "pod", name, "--wait=true")
	}
	plain, multi := median(took["eth0 only"]), median(took["eth0 + net1"])
	fmt.Printf("pod create -> Running, median of %d each (one pod at a time, both nodes):\n", pods)
	fmt.Printf("  eth0 only                 %7.0f ms\n", plain)
	fmt.Printf("  eth0 + net1 (macvlan)     %7.0f ms\n", multi)
	fmt.Printf("  ratio                     %7.2f\n", multi/plain)

	list, err := env.Client.CoreV1().Pods("kube-system").List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=plexusd"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		pid := podProcess(t, p.Spec.NodeName, p, "plexusd")
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
				fmt.Printf("plexusd on %s: %s\n", p.Spec.NodeName, strings.Join(strings.Fields(line), " "))
			}
		}
	}
}

// podProcess returns the pid of pod's process named comm ("": any), from
// the node's cgroups (hack/cluster.sh gives each node its own cgroup root).
func podProcess(t *testing.T, node string, pod corev1.Pod, comm string) string {
	t.Helper()
	root := "/sys/fs/cgroup/cpu/plexus-cl-" + node + "/kubepods"
	for _, pattern := range []string{root + "/*/pod" + string(pod.UID) + "/*/cgroup.procs", root + "/pod" + string(pod.UID) + "/*/cgroup.procs"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, pid := range strings.Fields(string(b)) {
				if name, err := os.ReadFile("/proc/" + pid + "/comm"); comm == "" || err == nil && strings.TrimSpace(string(name)) == comm {
					return pid
				}
			}
		}
	}
	t.Fatalf("no process %q of pod %s (UID %s) under %s", comm, pod.Name, pod.UID, root)
	return ""
}
