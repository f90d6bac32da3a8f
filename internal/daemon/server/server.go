// Package server serves CNI requests on plexusd's unix socket: it decodes a
// wire.Request, admits it through a bounded number of slots with a bounded
// wait queue (beyond it the answer is CNI code 11, try again later), runs it
// through a Handler (the meta-plugin), and returns the result or the CNI
// error with its code. A second path (wire.IPAMPath, plexus-ipam's
// requests) has the same protocol and its own slots. A handler gets the
// request as a Request and a context bounded by RequestTimeout, which
// Shutdown cancels for the requests still running when its wait is over.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/plexus-cni/plexus/internal/cnierr"
	"github.com/plexus-cni/plexus/internal/daemon/wire"
	"github.com/plexus-cni/plexus/internal/logging"
)

// Request is one admitted request as a Handler sees it: everything the
// shim forwarded. Handlers get request data from here only, never from the
// daemon's process environment or context values, so concurrent requests
// never see each other's.
type Request struct {
	// Command is CNI_COMMAND (ADD, DEL, CHECK, GC, STATUS).
	Command string
	Args    *skel.CmdArgs
	// Env holds the forwarded environment variables (wire.Request.Env).
	Env map[string]string
}

// Handler runs one request until ctx ends: RequestTimeout after its
// admission, or earlier when a shutdown cancels it. It returns the ADD
// result and the cniVersion to encode it in.
type Handler interface {
	Do(ctx context.Context, req Request) (types.Result, string, error)
}

// Recorder receives what the server measures; *metrics.Metrics implements it.
type Recorder interface {
	Observe(command string, networks []string, d time.Duration, code uint)
	InFlight(delta float64)
	Queued(delta float64)
	// Admitted reports how long an admitted request waited for its slot.
	Admitted(command string, waited time.Duration)
}

// Options configure a Server.
type Options struct {
	// Concurrency is how many requests run at once (default 16).
	Concurrency int
	// QueueLength is how many more may wait for a slot (0: none).
	QueueLength int
	// RequestTimeout bounds one request once admitted (default 4 minutes,
	// kubelet's own limit). A request runs to its end even when the shim
	// goes away, so that an ADD never stops halfway.
	RequestTimeout time.Duration
	// AbortTimeout bounds how long Shutdown, once it has cancelled the
	// requests still running, waits for their answers (default 10s).
	AbortTimeout time.Duration
	// Networks names the networks of a request for metric labels.
	Networks func(req *wire.Request) []string
	Recorder Recorder
	Log      *logging.Logger
	// IPAM, when set, serves wire.IPAMPath with its own slots.
	IPAM *Endpoint
}

// Endpoint is a second handler on the socket with its own bounds. Its
// slots are separate from the CNI requests' on purpose: IPAM requests
// arrive from delegates of CNI requests being served, so if they waited
// for a CNI slot, every slot could hold an ADD waiting for its IPAM.
type Endpoint struct {
	Handler Handler
	// Concurrency (default 32) and QueueLength bound it like Options'.
	Concurrency int
	QueueLength int
	Networks    func(req *wire.Request) []string
	Recorder    Recorder
}

// route is one served path: its handler, admission and measurements.
type route struct {
	h        Handler
	admit    *limiter
	rec      Recorder
	networks func(req *wire.Request) []string
}

// Server is the CNI endpoint of plexusd.
type Server struct {
	o    Options
	cni  *route
	ipam *route
	http *http.Server
	// base is the parent of every request's context; Shutdown cancels it
	// (stop) when its wait is over.
	base context.Context
	stop context.CancelCauseFunc
}

// errShutdown is why a request still running at the end of a shutdown's
// wait was cancelled.
var errShutdown = errors.New("plexusd is shutting down")

// New returns a Server running requests through h.
func New(h Handler, o Options) *Server {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 4 * time.Minute
	}
	if o.AbortTimeout <= 0 {
		o.AbortTimeout = 10 * time.Second
	}
	s := &Server{o: o, cni: newRoute(h, o.Concurrency, o.QueueLength, o.Networks, o.Recorder)}
	s.base, s.stop = context.WithCancelCause(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.Path, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.cni) })
	if o.IPAM != nil {
		e := *o.IPAM
		if e.Concurrency <= 0 {
			e.Concurrency = 32
		}
		s.ipam = newRoute(e.Handler, e.Concurrency, e.QueueLength, e.Networks, e.Recorder)
		mux.HandleFunc("POST "+wire.IPAMPath, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.ipam) })
	}
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.http.SetKeepAlivesEnabled(false)
	return s
}

func newRoute(h Handler, concurrency, queue int, networks func(*wire.Request) []string, rec Recorder) *route {
	if rec == nil {
		rec = nopRecorder{}
	}
	if networks == nil {
		networks = func(*wire.Request) []string { return nil }
	}
	return &route{h: h, admit: newLimiter(concurrency, queue), rec: rec, networks: networks}
}

// Listen creates the unix socket at path: its directory is created (and
// tightened) to 0700, a stale socket is replaced, the socket is 0600.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket %s: %w", path, err)
	}
	return l, nil
}

// Serve serves l until Shutdown; it returns nil after a Shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.http.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve CNI socket: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests and waits, until ctx ends, for those in
// flight to finish. Then it cancels the ones still running, which fail
// with code 11 after undoing what they did, and waits at most AbortTimeout
// more for their answers to go out.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err == nil {
		return nil
	}
	s.stop(errShutdown)
	abort, cancel := context.WithTimeout(context.Background(), s.o.AbortTimeout)
	defer cancel()
	if aerr := s.http.Shutdown(abort); aerr != nil {
		return fmt.Errorf("CNI requests still running after being cancelled at shutdown: %w", aerr)
	}
	return fmt.Errorf("CNI requests still running at shutdown were cancelled: %w", err)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	req, err := wire.DecodeRequest(r.Body)
	if err != nil {
		reply(w, http.StatusBadRequest, &wire.Response{Error: types.NewError(cnierr.DecodingFailure,
			fmt.Sprintf("plexusd: cannot decode the request: %v", err), "")})
		return
	}
	resp := s.admitAndRun(r.Context(), rt, req)
	reply(w, http.StatusOK, resp)
}

// admitAndRun waits for a slot of rt (while ctx lasts) and runs req.
func (s *Server) admitAndRun(ctx context.Context, rt *route, req *wire.Request) *wire.Response {
	rt.rec.Queued(1)
	arrived := time.Now()
	err := rt.admit.acquire(ctx)
	rt.rec.Queued(-1)
	if err != nil {
		rt.rec.Observe(req.Command, nil, 0, cnierr.TryAgainLater)
		return &wire.Response{Error: cnierr.ToCNI(err)}
	}
	defer rt.admit.release()
	if err := context.Cause(s.base); err != nil {
		rt.rec.Observe(req.Command, nil, 0, cnierr.TryAgainLater)
		return &wire.Response{Error: cnierr.ToCNI(cnierr.Wrap(cnierr.TryAgainLater, err))}
	}
	rt.rec.Admitted(req.Command, time.Since(arrived))
	rt.rec.InFlight(1)
	defer rt.rec.InFlight(-1)
	return s.run(rt, req)
}

// run executes an admitted request and measures it.
func (s *Server) run(rt *route, req *wire.Request) *wire.Response {
	ctx, cancel := context.WithTimeout(s.base, s.o.RequestTimeout)
	defer cancel()
	var networks []string
	if req.Command != "ADD" {
		networks = rt.networks(req)
	}
	start := time.Now()
	res, version, err := rt.h.Do(ctx, Request{Command: req.Command, Env: req.Env, Args: &skel.CmdArgs{
		ContainerID: req.ContainerID, Netns: req.Netns, IfName: req.IfName,
		Args: req.Args, Path: req.Path, StdinData: req.Config,
	}})
	if err == nil && res != nil {
		var raw []byte
		raw, err = encodeResult(res, version)
		if err == nil {
			if req.Command == "ADD" {
				networks = rt.networks(req)
			}
			rt.rec.Observe(req.Command, networks, time.Since(start), 0)
			return &wire.Response{Result: raw}
		}
	}
	cniErr := cnierr.ToCNI(err)
	code := uint(0)
	if cniErr != nil {
		code = cniErr.Code
	}
	rt.rec.Observe(req.Command, networks, time.Since(start), code)
	if cniErr != nil {
		return &wire.Response{Error: cniErr}
	}
	return &wire.Response{}
}

func encodeResult(res types.Result, version string) ([]byte, error) {
	conv, err := res.GetAsVersion(version)
	if err != nil {
		return nil, fmt.Errorf("convert the result to cniVersion %s: %w", version, err)
	}
	raw, err := json.Marshal(conv)
	if err != nil {
		return nil, fmt.Errorf("encode the result: %w", err)
	}
	return raw, nil
}

func reply(w http.ResponseWriter, status int, resp *wire.Response) {
	body, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(&wire.Response{Error: types.NewError(cnierr.Internal, fmt.Sprintf("plexusd: encode the answer: %v", err), "")})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

type nopRecorder struct{}

func (nopRecorder) Observe(string, []string, time.Duration, uint) {}
func (nopRecorder) InFlight(float64)                              {}
func (nopRecorder) Queued(float64)                                {}
func (nopRecorder) Admitted(string, time.Duration)                {}
