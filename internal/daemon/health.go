package daemon

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"

	"github.com/plexus-cni/plexus/internal/buildinfo"
)

// httpHandler serves httpMux, every answer with plexusd's version in
// buildinfo.Header (plexusctl doctor compares it with its own).
func (d *Daemon) httpHandler() http.Handler {
	mux := d.httpMux()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(buildinfo.Header, buildinfo.Version)
		mux.ServeHTTP(w, r)
	})
}

func (d *Daemon) httpMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", d.readyz)
	if d.o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// NotReady lists why the daemon is not ready (empty when it is): it is
// ready when the caches have synced and the configuration file is current.
func (d *Daemon) NotReady() []string {
	var why []string
	if d.stopping.Load() {
		why = append(why, "shutting down")
	}
	synced := d.recordSync()
	for _, res := range slices.Sorted(maps.Keys(synced)) {
		if !synced[res] {
			why = append(why, res+" cache not synced")
		}
	}
	st := d.installer.State()
	if !st.ConfCurrent {
		why = append(why, st.Reason+": "+st.Waiting)
	}
	if st.KubeconfigError != "" {
		why = append(why, "plugin kubeconfig: "+st.KubeconfigError)
	}
	if st.IPAMError != "" {
		why = append(why, "plexus-ipam defaults: "+st.IPAMError)
	}
	if st.AliasError != "" {
		why = append(why, "whereabouts alias: "+st.AliasError)
	}
	return why
}

func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	why := d.NotReady()
	if len(why) > 0 {
		http.Error(w, "not ready: "+strings.Join(why, "; "), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}
