package cliflags

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

type opts struct {
	config, apiServer, level string
	grace                    time.Duration
	queue                    int
	ipam                     bool
}

func newSet(o *opts) (*Set, *bytes.Buffer, *bytes.Buffer) {
	s := New("prog")
	var out, errOut bytes.Buffer
	s.Out, s.Err = &out, &errOut
	k := s.Group("Kubernetes")
	k.StringVar(&o.config, "config", "", "config file")
	k.StringVar(&o.apiServer, "api-server", "", "API server URL")
	s.Rename("apiServer", "api-server")
	i := s.Group("IPAM reclaimer")
	i.DurationVar(&o.grace, "ipam-grace", time.Minute, "grace")
	i.IntVar(&o.queue, "queue-length", 64, "queue")
	s.Rename("queueLength", "queue-length")
	i.BoolVar(&o.ipam, "ipam", true, "reclaim")
	s.Group("Logging and metrics").StringVar(&o.level, "log-level", "info", "level")
	return s, &out, &errOut
}

// The previous release's command lines parse to the same options as the
// new spellings, with one warning per old spelling naming the new one.
func TestOldSpellings(t *testing.T) {
	want := opts{config: "/x", apiServer: "https://a:6443", grace: 2 * time.Minute, queue: -1, level: "debug"}
	for _, tc := range []struct {
		args  []string
		warns []string
	}{
		{[]string{"--config=/x", "--api-server", "https://a:6443", "--ipam-grace=2m", "--queue-length", "-1", "--ipam=false", "--log-level=debug"}, nil},
		{[]string{"-config=/x", "-apiServer", "https://a:6443", "-ipam-grace", "2m", "-queueLength=-1", "-ipam=false", "--log-level", "debug"},
			[]string{"-config --config", "-apiServer --api-server", "-ipam-grace --ipam-grace", "-queueLength --queue-length", "-ipam --ipam"}},
		{[]string{"--apiServer=https://a:6443", "-config", "/x", "--ipam-grace=2m", "--queueLength", "-1", "--ipam=false", "--apiServer=https://a:6443", "--log-level=debug"},
			[]string{"--apiServer --api-server", "-config --config", "--queueLength --queue-length"}},
	} {
		var got opts
		s, _, errOut := newSet(&got)
		if err := s.Parse(tc.args); err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if got != want {
			t.Errorf("%q: %+v, want %+v", tc.args, got, want)
		}
		lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
		if len(tc.warns) == 0 && errOut.Len() > 0 || len(tc.warns) > 0 && len(lines) != len(tc.warns) {
			t.Errorf("%q: warnings %q, want %d", tc.args, errOut.String(), len(tc.warns))
			continue
		}
		for i, w := range tc.warns {
			old, spelling, _ := strings.Cut(w, " ")
			if !strings.HasPrefix(lines[i], "prog: flag "+old+" is deprecated") || !strings.HasSuffix(lines[i], "; use "+spelling) {
				t.Errorf("%q: warning %q, want one for %s naming %s", tc.args, lines[i], old, spelling)
			}
		}
		if !s.Flags().Changed("api-server") || !s.Flags().Changed("ipam-grace") {
			t.Errorf("%q: Changed does not report the flags given", tc.args)
		}
	}
}

func TestRewrite(t *testing.T) {
	var o opts
	s, _, _ := newSet(&o)
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-h"}, []string{"-h"}},
		{[]string{"-help"}, []string{"--help"}},
		{[]string{"-"}, []string{"-"}},
		{[]string{"pos", "-1", "-10"}, []string{"pos", "-1", "-10"}},
		{[]string{"--log-level", "-config"}, []string{"--log-level", "-config"}}, // a value
		{[]string{"--", "-config", "--apiServer"}, []string{"--", "-config", "--apiServer"}},
		{[]string{"-ipam", "-unknown=1"}, []string{"--ipam", "--unknown=1"}},
		{[]string{"-queueLength="}, []string{"--queue-length="}},
	} {
		if got := s.rewrite(s.Flags(), tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("rewrite(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// --help lists the flags under their group headings, in the order the
// groups were made, and hides the old spellings.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		var o opts
		s, out, errOut := newSet(&o)
		if err := s.Parse([]string{arg}); !errors.Is(err, pflag.ErrHelp) {
			t.Fatalf("%s: %v, want pflag.ErrHelp", arg, err)
		}
		help := out.String()
		k, i, l := strings.Index(help, "Kubernetes flags:\n"), strings.Index(help, "IPAM reclaimer flags:\n"), strings.Index(help, "Logging and metrics flags:\n")
		if k != 0 || i < k || l < i || errOut.Len() > 0 {
			t.Fatalf("%s: help\n%s\nstderr %q", arg, help, errOut.String())
		}
		if a, g := strings.Index(help, "--api-server string"), strings.Index(help, "--ipam-grace duration"); a < k || a > i || g < i || g > l {
			t.Errorf("%s: flags outside their groups:\n%s", arg, help)
		}
		if strings.Contains(help, "apiServer") || strings.Contains(help, "queueLength") {
			t.Errorf("%s: help shows old spellings:\n%s", arg, help)
		}
	}
}

func TestUnknownFlag(t *testing.T) {
	var o opts
	s, out, _ := newSet(&o)
	if err := s.Parse([]string{"-nope=1"}); err == nil || !strings.Contains(err.Error(), "--nope") || out.Len() > 0 {
		t.Errorf("unknown flag: %v, output %q", err, out.String())
	}
}

func TestDefinedTwice(t *testing.T) {
	s := New("prog")
	s.Group("a").Bool("x", false, "")
	s.Group("b").Bool("x", false, "")
	defer func() {
		if recover() == nil {
			t.Error("no panic for a flag in two groups")
		}
	}()
	s.Flags()
}

func TestKebab(t *testing.T) {
	for camel, want := range map[string]string{
		"apiServer": "api-server", "serveIPAM": "serve-ipam", "ipamConfDir": "ipam-conf-dir", "IPAMConfDir": "ipam-conf-dir",
		"caFile": "ca-file", "kubeconfig": "kubeconfig", "readinessIndicatorFile": "readiness-indicator-file",
		"cacheSyncTimeoutSeconds": "cache-sync-timeout-seconds", "pprof": "pprof", "ipv4Only": "ipv4-only",
	} {
		if got := Kebab(camel); got != want {
			t.Errorf("Kebab(%q) = %q, want %q", camel, got, want)
		}
	}
}
