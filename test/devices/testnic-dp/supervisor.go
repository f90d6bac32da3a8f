package main

import (
	"context"
	"log"
	"path/filepath"
	"time"

	"github.com/plexus-cni/plexus/test/devices/testnic"
)

// kubeletSocketName is kubelet's Registration socket in the plugin directory.
const kubeletSocketName = "kubelet.sock"

// supervisor keeps the plugin served and registered, the way real device
// plugins survive kubelet restarts: kubelet removes the plugin sockets and
// recreates its own, so a missing plugin socket restarts the server and a
// new kubelet socket triggers registration again.
type supervisor struct {
	opts   options
	plugin *plugin
	log    *log.Logger

	srv        *server
	registered fileID // the kubelet socket registered with; zero if none
	waiting    bool   // "waiting for kubelet" was logged
	lastErr    string // the error last logged, until a step succeeds
}

// endpoint is the plugin socket's file name in the plugin directory.
func (s *supervisor) endpoint() string { return testnic.SocketName(s.opts.resource) }

// run polls until ctx ends, then stops the server.
func (s *supervisor) run(ctx context.Context) error {
	ticker := time.NewTicker(s.opts.interval)
	defer ticker.Stop()
	for {
		s.tick(ctx)
		select {
		case <-ctx.Done():
			return s.shutdown()
		case <-ticker.C:
		}
	}
}

// tick does one round: serve, register, re-check device health.
func (s *supervisor) tick(ctx context.Context) {
	s.ensureServing()
	s.ensureRegistered(ctx)
	for _, d := range s.plugin.health.refresh() {
		s.log.Printf("device %s is %s", d.ID, d.Health)
	}
}

// ensureServing (re)starts the server when it is not running or its socket
// was removed.
func (s *supervisor) ensureServing() {
	path := filepath.Join(s.opts.pluginDir, s.endpoint())
	if s.srv != nil {
		if _, err := socketID(path); err == nil {
			return
		}
		s.log.Printf("socket %s is gone: restarting the server", path)
		if err := s.srv.stop(); err != nil {
			s.log.Print(err)
		}
		s.srv = nil
	}
	srv, err := serve(path, s.plugin)
	if err != nil {
		s.report(err)
		return
	}
	s.srv, s.registered, s.lastErr = srv, fileID{}, ""
	s.log.Printf("serving %s on %s", s.opts.resource, path)
}

// ensureRegistered registers with kubelet when its socket is new.
func (s *supervisor) ensureRegistered(ctx context.Context) {
	if s.srv == nil {
		return
	}
	kubeletSock := filepath.Join(s.opts.pluginDir, kubeletSocketName)
	id, err := socketID(kubeletSock)
	if err != nil {
		if !s.waiting {
			s.log.Printf("waiting for kubelet: %v", err)
		}
		s.waiting, s.registered = true, fileID{}
		return
	}
	s.waiting = false
	if id == s.registered {
		return
	}
	if err := register(ctx, kubeletSock, s.endpoint(), s.opts.resource); err != nil {
		if ctx.Err() == nil {
			s.report(err)
		}
		return
	}
	s.registered, s.lastErr = id, ""
	s.log.Printf("registered %s with kubelet at %s, endpoint %s", s.opts.resource, kubeletSock, s.endpoint())
}

// report logs err unless it repeats the one logged last: a step that keeps
// failing is retried every tick but logged once.
func (s *supervisor) report(err error) {
	if err.Error() != s.lastErr {
		s.log.Print(err)
	}
	s.lastErr = err.Error()
}

// shutdown stops the server and removes its socket.
func (s *supervisor) shutdown() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.stop()
	s.srv = nil
	return err
}
