package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/google/go-cmp/cmp"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// seen records what the handler was asked to run.
type seen struct {
	calls   int
	command string
	args    skel.CmdArgs
	env     map[string]string
}

func (s *seen) Do(_ context.Context, req Request) (types.Result, string, error) {
	s.calls++
	s.command, s.args, s.env = req.Command, *req.Args, req.Env
	return nil, "", nil
}

// FuzzServe posts arbitrary bodies to both endpoints of the socket: a body
// that does not decode is answered 400 with a CNI decoding error and runs
// nothing; any other runs exactly the request it holds, once.
func FuzzServe(f *testing.F) {
	s1 := `{"cniVersion":"1.0.0","name":"plexus-network","type":"plexus","clusterNetwork":"/etc/cni/net.d/10-flannel.conflist","daemonSocket":"/run/plexus/plexusd.sock"}`
	s4 := `{"cniVersion":"0.3.0","name":"whereaboutsexample","type":"macvlan","ipam":{"type":"plexus-ipam","range":"192.168.91.100-192.168.91.110/24","gateway":"192.168.91.1"}}`
	for _, seed := range []struct {
		body string
		ipam bool
	}{
		{`{"command":"ADD","containerID":"0123abcd","netns":"/var/run/netns/cni-1","ifName":"eth0","args":"K8S_POD_NAMESPACE=default;K8S_POD_NAME=samplepod","path":"/opt/cni/bin","config":` + s1 + `}`, false},
		{`{"command":"DEL","containerID":"0123abcd","ifName":"eth0","config":` + s1 + `}`, false},
		{`{"command":"ADD","containerID":"c1","netns":"/var/run/netns/x","ifName":"net1","config":` + s4 + `,"env":{"NODE_NAME":"n1"}}`, true},
		{`{"command":"STATUS","config":{}}`, false}, {`{}`, true}, {`null`, false}, {`{"command":"ADD"} {}`, false}, {`{"command":7}`, true}, {``, false},
	} {
		f.Add([]byte(seed.body), seed.ipam)
	}
	f.Fuzz(func(t *testing.T, body []byte, ipam bool) {
		cni, ipamH := &seen{}, &seen{}
		s := New(cni, Options{Concurrency: 1, IPAM: &Endpoint{Handler: ipamH, Concurrency: 1}})
		path, h, other := wire.Path, cni, ipamH
		if ipam {
			path, h, other = wire.IPAMPath, ipamH, cni
		}
		w := httptest.NewRecorder()
		s.http.Handler.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
		resp := &wire.Response{}
		if err := json.Unmarshal(w.Body.Bytes(), resp); err != nil {
			t.Fatalf("answer %q is not a wire.Response: %v", w.Body.Bytes(), err)
		}
		if other.calls != 0 {
			t.Fatalf("a request to %s ran on the other endpoint", path)
		}
		req, err := wire.DecodeRequest(bytes.NewReader(body))
		if err != nil {
			if w.Code != http.StatusBadRequest || resp.Error == nil || resp.Error.Code != cnierr.DecodingFailure || h.calls != 0 {
				t.Fatalf("undecodable %q (%v): HTTP %d, %+v, %d runs; want 400, code %d, no run",
					body, err, w.Code, resp.Error, h.calls, cnierr.DecodingFailure)
			}
			return
		}
		if w.Code != http.StatusOK || resp.Error != nil || h.calls != 1 {
			t.Fatalf("request %q: HTTP %d, error %+v, %d runs; want 200, no error, one run", body, w.Code, resp.Error, h.calls)
		}
		want := skel.CmdArgs{ContainerID: req.ContainerID, Netns: req.Netns, IfName: req.IfName,
			Args: req.Args, Path: req.Path, StdinData: req.Config}
		if diff := cmp.Diff(want, h.args); h.command != req.Command || diff != "" {
			t.Fatalf("request %q ran as %s, want %s (-want +ran):\n%s", body, h.command, req.Command, diff)
		}
		if !cmp.Equal(req.Env, h.env) {
			t.Fatalf("request %q ran with env %v, want %v", body, h.env, req.Env)
		}
	})
}
