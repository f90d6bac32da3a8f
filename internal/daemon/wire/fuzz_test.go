package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/google/go-cmp/cmp"

	"github.com/plexus-cni/plexus/internal/jsontest"
	"github.com/plexus-cni/plexus/pkg/fielderr"
)

// s1Config is the plexus configuration of scenario S1 as plexusd's
// installer writes it (the shim forwards it verbatim).
const s1Config = `{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus",` +
	`"kubeconfig":"/etc/cni/net.d/plexus.d/plexus.kubeconfig","clusterNetwork":"/etc/cni/net.d/10-flannel.conflist",` +
	`"daemonSocket":"/run/plexus/plexusd.sock","capabilities":{"portMappings":true}}`

// s4IPAM is what plexus-ipam forwards for scenario S4's macvlan delegate.
const s4IPAM = `{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","master":"ens3","mode":"bridge",` +
	`"ipam":{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24","gateway":"192.168.91.1"}}`

var requestSeeds = []string{
	`{"command":"ADD","containerID":"0123abcd","netns":"/var/run/netns/cni-1","ifName":"eth0",` +
		`"args":"IgnoreUnknown=1;K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=samplepod;K8S_POD_UID=u-1","path":"/opt/cni/bin","config":` + s1Config + `}`,
	`{"command":"DEL","containerID":"0123abcd","ifName":"eth0","config":` + s1Config + `}`,
	`{"command":"ADD","containerID":"c1","netns":"/var/run/netns/x","ifName":"net1","config":` + s4IPAM + `,"env":{"NODE_NAME":"n1"}}`,
	`{"command":"GC","config":{"cniVersion":"1.1.0","name":"p","type":"plexus","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]}}`,
	`{"command":"STATUS","config":{"cniVersion":"1.1.0"}}`,
	`{"command":"ADD"}`, `{}`, `null`, `{"config":null}`, `{"config": { "a" : "<&>" } }`, `{"command":"ADD"} trailing`,
	`{"COMMAND":"del","Config":[1,2]}`, `{"env":{"a":"\ud800"}}`, `[]`, `{`,
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(bytes.NewReader(data))
		if err != nil {
			var fe *fielderr.Error
			if req != nil || !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("DecodeRequest(%q) = %v, %v; want no request and an error naming a field", data, req, err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("decoded %q is not a valid request: %v", data, err)
		}
		checkRequestRoundTrip(t, req)
	})
}

// checkRequestRoundTrip asserts that req, encoded as the shim encodes it,
// decodes to the same request, and that encoding is then a fixed point.
func checkRequestRoundTrip(t *testing.T, req *Request) {
	t.Helper()
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatalf("encode %+v: %v", req, err)
	}
	again, err := DecodeRequest(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode of the re-encoded %s: %v", b, err)
	}
	if !jsontest.Same(req.Config, again.Config) {
		t.Fatalf("config changed in the round trip: %q became %q", req.Config, again.Config)
	}
	first, second := *req, *again
	first.Config, second.Config = nil, nil
	if diff := cmp.Diff(first, second); diff != "" {
		t.Fatalf("round trip via %s changed the request (-first +second):\n%s", b, diff)
	}
	b2, err := json.Marshal(again)
	if err != nil || !bytes.Equal(b, b2) {
		t.Fatalf("encoding is not a fixed point: %s then %s (%v)", b, b2, err)
	}
}

// FuzzRequestFromArgs follows a CNI invocation through the socket: what
// the shim builds from skel's arguments reaches plexusd unchanged.
func FuzzRequestFromArgs(f *testing.F) {
	f.Add("ADD", "0123abcd", "/var/run/netns/cni-1", "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=tomcat;K8S_POD_NAME=samplepod", "/opt/cni/bin", []byte(s1Config))
	f.Add("DEL", "c1", "", "net1", "", "", []byte(s4IPAM))
	f.Add("CHECK", "c\x00", "/x", "é", "K=\"v\"", "<&>", []byte(`{"a":"\u2028"}`))
	f.Fuzz(func(t *testing.T, command, containerID, netns, ifName, args, path string, config []byte) {
		// The shim forwards only configurations that decode to an object
		// (JSON's white space is not Go's: no \v, no \f).
		if c := bytes.TrimLeft(config, " \t\r\n"); !json.Valid(config) || c[0] != '{' {
			t.Skip("not a configuration the shim forwards")
		}
		in := &skel.CmdArgs{ContainerID: containerID, Netns: netns, IfName: ifName, Args: args, Path: path, StdinData: config}
		req := NewRequest(command, in)
		if err := req.Validate(); err != nil {
			var fe *fielderr.Error
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Field, "CNI_") {
				t.Fatalf("Validate(%+v) = %v, want an error naming the variable", req, err)
			}
			return // the shim does not forward it
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("encode %+v: %v", req, err)
		}
		got, err := DecodeRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !jsontest.Same(config, got.Config) {
			t.Fatalf("config %q arrived as %q", config, got.Config)
		}
		want := &Request{Command: command, ContainerID: containerID, Netns: netns, IfName: ifName, Args: args, Path: path}
		got.Config = nil
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("the daemon sees another request than the runtime made (-runtime +daemon):\n%s", diff)
		}
	})
}
