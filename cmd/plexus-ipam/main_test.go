package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/plexus-cni/plexus/internal/testbed"
	"github.com/plexus-cni/plexus/pkg/ipam/store/nodelock"
)

// plugin is the built binary and what a test saw it print.
type plugin struct {
	t   *testing.T
	bin string
	// seen accumulates every stdout and stderr, to check for secrets.
	seen bytes.Buffer
}

// binary is the plugin built once by TestMain; locks is the directory of
// its node-lock files (not the host's /run/plexus).
var binary, locks string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "plexus-ipam-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// plexus-ipam runs requests without a daemon in plexus-ipam-local,
	// which is installed beside it: the two as a node has them.
	binary, locks = filepath.Join(dir, "plexus-ipam"), filepath.Join(dir, "locks")
	for out, pkg := range map[string]string{binary: ".", filepath.Join(dir, "plexus-ipam-local"): "../plexus-ipam-local"} {
		if msg, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, msg)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(t *testing.T) *plugin { return &plugin{t: t, bin: binary} }

// cniError is the error object the plugin prints.
type cniError struct {
	Code uint   `json:"code"`
	Msg  string `json:"msg"`
}

// run invokes the plugin like a runtime does; it returns stdout, or the
// error object when the plugin failed.
func (p *plugin) run(cmd, cid, ifname, conf string) (string, *cniError) {
	p.t.Helper()
	c := exec.Command(p.bin)
	c.Env = append(os.Environ(), "CNI_COMMAND="+cmd, "CNI_CONTAINERID="+cid, "CNI_NETNS=/run/netns/none",
		"CNI_IFNAME="+ifname, "CNI_PATH=/nonexistent", "NODENAME=node-a", nodelock.DirEnv+"="+locks,
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=pod-"+cid+";K8S_POD_UID=uid-"+cid)
	if cmd == "GC" || cmd == "STATUS" || cmd == "VERSION" {
		c.Env = append(c.Env, "CNI_CONTAINERID=", "CNI_IFNAME=", "CNI_NETNS=")
	}
	c.Stdin = strings.NewReader(conf)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	p.seen.Write(stdout.Bytes())
	p.seen.Write(stderr.Bytes())
	if err == nil {
		return stdout.String(), nil
	}
	var e cniError
	if jerr := json.Unmarshal(stdout.Bytes(), &e); jerr != nil {
		p.t.Fatalf("%s %s: %v; stdout %q stderr %q", cmd, cid, err, stdout.String(), stderr.String())
	}
	return "", &e
}

func (p *plugin) mustAdd(cid, conf string) string {
	p.t.Helper()
	out, e := p.run("ADD", cid, "net1", conf)
	if e != nil {
		p.t.Fatalf("ADD %s: code %d: %s", cid, e.Code, e.Msg)
	}
	var res struct {
		IPs []struct{ Address, Gateway string } `json:"ips"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.IPs) == 0 {
		p.t.Fatalf("ADD %s: result %q: %v", cid, out, err)
	}
	return res.IPs[0].Address
}

// s4 is scenario S4's IPAM section with plexus-ipam; store selects the store.
func s4(cniVersion, store, logFile string) string {
	return fmt.Sprintf(`{"cniVersion":%q,"name":"whereaboutsexample","type":"macvlan","master":"ens3","mode":"bridge",
		"ipam":{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24",%s,"log_file":%q,"log_level":"debug","gateway":"192.168.91.1"}}`,
		cniVersion, store, logFile)
}

// exercise runs the CNI commands against a store and checks the outcomes.
func exercise(t *testing.T, p *plugin, storeKeys string) {
	logFile := filepath.Join(t.TempDir(), "plexus-ipam.log")
	conf := s4("1.1.0", storeKeys, logFile)
	var got []string
	for i := 0; i < 5; i++ {
		got = append(got, p.mustAdd(fmt.Sprintf("c%d", i), conf))
	}
	want := "[192.168.91.100/24 192.168.91.101/24 192.168.91.102/24 192.168.91.103/24 192.168.91.104/24]"
	if fmt.Sprint(got) != want {
		t.Errorf("five pods: %v, want %s", got, want)
	}
	if again := p.mustAdd("c1", conf); again != "192.168.91.101/24" {
		t.Errorf("repeated ADD: %s", again)
	}
	// A 0.3.0 configuration gets a 0.3.0 result.
	if out, e := p.run("ADD", "old", "net1", s4("0.3.0", storeKeys, logFile)); e != nil || !strings.Contains(out, `"cniVersion": "0.3.0"`) {
		t.Errorf("0.3.0 ADD: %q, %+v", out, e)
	}
	prev := strings.Replace(conf, `"name":`, `"prevResult":{"cniVersion":"1.1.0","ips":[{"address":"192.168.91.102/24"}]},"name":`, 1)
	if _, e := p.run("CHECK", "c2", "net1", prev); e != nil {
		t.Errorf("CHECK: %+v", e)
	}
	if _, e := p.run("DEL", "c2", "net1", conf); e != nil {
		t.Errorf("DEL: %+v", e)
	}
	if _, e := p.run("DEL", "never-added", "net1", conf); e != nil {
		t.Errorf("DEL of an unknown container: %+v", e)
	}
	if _, e := p.run("CHECK", "c2", "net1", conf); e == nil {
		t.Error("CHECK after DEL succeeded")
	}
	if a := p.mustAdd("c5", conf); a != "192.168.91.102/24" {
		t.Errorf("ADD after DEL: %s, want the freed 192.168.91.102/24", a)
	}
	gc := strings.Replace(conf, `"name":`, `"cni.dev/valid-attachments":[{"containerID":"c0","ifname":"net1"}],"name":`, 1)
	if _, e := p.run("GC", "", "", gc); e != nil {
		t.Errorf("GC: %+v", e)
	}
	if a := p.mustAdd("c6", conf); a != "192.168.91.101/24" {
		t.Errorf("ADD after GC kept only c0: %s, want 192.168.91.101/24", a)
	}
	if _, e := p.run("STATUS", "", "", conf); e != nil {
		t.Errorf("STATUS: %+v", e)
	}
	if out, e := p.run("VERSION", "", "", `{"cniVersion":"1.1.0"}`); e != nil || !strings.Contains(out, `"1.1.0"`) {
		t.Errorf("VERSION: %q, %+v", out, e)
	}
	if _, e := p.run("ADD", "bad", "net1", strings.Replace(conf, "192.168.91.110/24", "192.168.91.110/33", 1)); e == nil || e.Code != 7 {
		t.Errorf("ADD with a bad range: %+v, want code 7", e)
	}
	if log, err := os.ReadFile(logFile); err != nil || !strings.Contains(string(log), "192.168.91.102") {
		t.Errorf("log_file: %v, %q", err, log)
	}
}

func TestKubernetesStore(t *testing.T) {
	env := testbed.Require(t)
	p := build(t)
	ns := env.Namespace(t, "ipam-cni")
	exercise(t, p, fmt.Sprintf(`"kubernetes":{"kubeconfig":%q,"namespace":%q}`, env.Kubeconfig, ns))
	checkNoToken(t, p, env.Kubeconfig)
}

func TestEtcdStore(t *testing.T) {
	endpoint := testbed.StartEtcd(t)
	p := build(t)
	exercise(t, p, fmt.Sprintf(`"etcd_host":%q`, strings.TrimPrefix(endpoint, "http://")))
}

// TestTokenNeverShown runs ADD, DEL and STATUS with a kubeconfig whose
// token the API server rejects, and with one whose server is down: the
// errors are reported with the right codes, and the token appears nowhere.
func TestTokenNeverShown(t *testing.T) {
	env := testbed.Require(t)
	p := build(t)
	const secret = "plexus-secret-token-5f0c1d"
	dir := t.TempDir()
	real, err := os.ReadFile(env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	wrong := regexp.MustCompile(`token: .*`).ReplaceAllString(string(real), "token: "+secret)
	down := regexp.MustCompile(`server: .*`).ReplaceAllString(wrong, "server: https://127.0.0.1:1")
	logFile := filepath.Join(dir, "log")
	for name, kc := range map[string]string{"rejected": wrong, "down": down} {
		path := filepath.Join(dir, name+".kubeconfig")
		if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		conf := s4("1.1.0", fmt.Sprintf(`"kubernetes":{"kubeconfig":%q}`, path), logFile)
		_, e := p.run("ADD", "c1", "net1", conf)
		if e == nil || e.Code == 0 {
			t.Errorf("%s: ADD succeeded", name)
		}
		if _, e := p.run("DEL", "c1", "net1", conf); e == nil {
			t.Errorf("%s: DEL succeeded although the store is unusable", name)
		}
		if _, e := p.run("STATUS", "", "", conf); e == nil || e.Code != 50 {
			t.Errorf("%s: STATUS: %+v, want code 50", name, e)
		}
	}
	if log, _ := os.ReadFile(logFile); bytes.Contains(log, []byte(secret)) {
		t.Errorf("the token is in log_file")
	}
	if strings.Contains(p.seen.String(), secret) {
		t.Errorf("the token is in the plugin's output:\n%s", p.seen.String())
	}
}

// checkNoToken checks that the test bed's admin token never appeared.
func checkNoToken(t *testing.T, p *plugin, kubeconfig string) {
	data, err := os.ReadFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`token: (\S+)`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no token in %s", kubeconfig)
	}
	if bytes.Contains(p.seen.Bytes(), m[1]) {
		t.Error("the kubeconfig token appears in the plugin's output")
	}
}
