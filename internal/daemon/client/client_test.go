package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/plexus-cni/plexus/internal/daemon/client"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
)

// serve runs handler on a fresh unix socket and returns the socket's path.
func serve(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return socket
}

func request() *wire.Request {
	return wire.NewRequest("ADD", &skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/x", IfName: "eth0",
		StdinData: []byte(`{"cniVersion":"1.0.0","name":"n","type":"plexus-shim"}`)})
}

// The client reads the answer whether the server sends a Content-Length
// (small answers) or chunks (large ones, written in pieces), and it sends
// the request the server's HTTP stack expects.
func TestCallReadsEveryBodyFraming(t *testing.T) {
	big := strings.Repeat("x", 100_000)
	for name, write := range map[string]func(http.ResponseWriter){
		"content-length": func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"result":{"cniVersion":"1.0.0"},"cniVersion":"1.0.0"}`))
		},
		"chunked": func(w http.ResponseWriter) {
			w.Write([]byte(`{"result":{"cniVersion":"1.0.0","dns":{"domain":"`))
			w.(http.Flusher).Flush()
			w.Write([]byte(big + `"}},"cniVersion":"1.0.0"}`))
		},
	} {
		t.Run(name, func(t *testing.T) {
			var gotPath, gotCommand string
			socket := serve(t, func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.Path
				var req wire.Request
				if err := decodeJSON(r, &req); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				gotCommand = req.Command
				write(w)
			})
			resp, err := (&client.Client{Path: wire.IPAMPath}).Call(context.Background(), socket, request())
			if err != nil {
				t.Fatal(err)
			}
			if gotPath != wire.IPAMPath || gotCommand != "ADD" {
				t.Errorf("server got path %q command %q, want %q ADD", gotPath, gotCommand, wire.IPAMPath)
			}
			if len(resp.Result) == 0 || (name == "chunked" && !strings.Contains(string(resp.Result), big)) {
				t.Errorf("result not read whole: %d bytes", len(resp.Result))
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	t.Run("no socket is unreachable", func(t *testing.T) {
		_, err := (&client.Client{}).Call(context.Background(), filepath.Join(t.TempDir(), "none.sock"), request())
		var u *client.UnreachableError
		if !errors.As(err, &u) {
			t.Fatalf("error %v, want an UnreachableError", err)
		}
	})
	t.Run("HTTP error without a CNI error", func(t *testing.T) {
		socket := serve(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
		_, err := (&client.Client{}).Call(context.Background(), socket, request())
		var u *client.UnreachableError
		if err == nil || errors.As(err, &u) || !strings.Contains(err.Error(), "HTTP 500") || !strings.Contains(err.Error(), "boom") {
			t.Fatalf("error %v, want one naming HTTP 500 and the body", err)
		}
	})
	t.Run("the context's end stops a hung daemon", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		socket := serve(t, func(w http.ResponseWriter, r *http.Request) { <-release })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := (&client.Client{}).Call(ctx, socket, request())
		var u *client.UnreachableError
		if err == nil || errors.As(err, &u) || !strings.Contains(err.Error(), "may have done part of it") {
			t.Fatalf("error %v, want a failure after the request was sent", err)
		}
	})
}

func decodeJSON(r *http.Request, v any) error {
	return json.NewDecoder(r.Body).Decode(v)
}
