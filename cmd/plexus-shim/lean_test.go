package main

import (
	"os/exec"
	"strings"
	"testing"
)

// heavy are the import paths (prefixes) that the binaries a runtime execs
// on every pod in daemon mode must not link: each would add megabytes and
// package initialisation to every start (client-go's scheme, protobuf
// descriptors, the TLS stack of net/http).
var heavy = []string{
	"k8s.io/", "sigs.k8s.io/", "google.golang.org/protobuf", "google.golang.org/grpc",
	"github.com/golang/protobuf", "github.com/gogo/protobuf", "go.etcd.io/",
	"net/http", "crypto/tls", "crypto/x509",
}

// TestPerPodBinariesStayLean keeps plexus-shim and plexus-ipam small: their
// import graphs (go list -deps) hold nothing of heavy.
func TestPerPodBinariesStayLean(t *testing.T) {
	for _, pkg := range []string{"github.com/plexus-cni/plexus/cmd/plexus-shim", "github.com/plexus-cni/plexus/cmd/plexus-ipam"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", pkg, deps)
		}
		for _, d := range deps {
			for _, h := range heavy {
				if d == h || strings.HasPrefix(d, h) && (strings.HasSuffix(h, "/") || strings.HasPrefix(d, h+"/")) {
					t.Errorf("%s links %s", pkg, d)
				}
			}
		}
	}
}
