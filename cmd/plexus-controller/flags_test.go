package main

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// The previous release's command lines (Go flag's single dash) parse to the
// options of the new ones, with a warning naming each new spelling.
func TestOldSpellings(t *testing.T) {
	old := []string{"-kubeconfig", "/k", "-leader-election-name=l", "-ipam-grace", "5m", "-ipam-namespaces=a,b", "-ipam=false",
		"-webhook-address=", "-webhook-ipam-node-defaults=false", "-kube-api-qps=50", "-log-level=debug", "-ensure-nad-crd=false"}
	current := []string{"--kubeconfig", "/k", "--leader-election-name=l", "--ipam-grace", "5m", "--ipam-namespaces=a,b", "--ipam=false",
		"--webhook-address=", "--webhook-ipam-node-defaults=false", "--kube-api-qps=50", "--log-level=debug", "--ensure-nad-crd=false"}
	var warnings, none bytes.Buffer
	got, err := parseFlags(old, io.Discard, &warnings)
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseFlags(current, io.Discard, &none)
	if err != nil || none.Len() > 0 {
		t.Fatalf("new spellings: %v, warnings %q", err, none.String())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old spellings: %+v\nnew spellings: %+v", got, want)
	}
	if want.kubeconfig != "/k" || want.ipam.opts.Grace != 5*time.Minute || want.ipam.enabled || !reflect.DeepEqual(want.ipam.opts.Namespaces, []string{"a", "b"}) ||
		want.webhook.Address != "" || !want.webhook.Policy.NoIPAMDefaults || want.qps != 50 || want.ensureNADCRD {
		t.Errorf("new spellings: %+v", want)
	}
	if n := strings.Count(warnings.String(), "\n"); n != len(old)-2 { // 2 values
		t.Errorf("%d warnings, want %d:\n%s", n, len(old)-2, warnings.String())
	}
	if w := "plexus-controller: flag -ipam-grace is deprecated and will be removed in a future release; use --ipam-grace\n"; !strings.Contains(warnings.String(), w) {
		t.Errorf("warnings lack %q:\n%s", w, warnings.String())
	}
}

// --help lists the flags under group headings.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		var out, errOut bytes.Buffer
		if _, err := parseFlags([]string{arg}, &out, &errOut); !errors.Is(err, pflag.ErrHelp) || errOut.Len() > 0 {
			t.Fatalf("%s: %v, stderr %q", arg, err, errOut.String())
		}
		last := -1
		for _, h := range []string{"Kubernetes flags:\n", "Leader election flags:\n", "IPAM reclaimer flags:\n", "Webhook flags:\n",
			"Logging and metrics flags:\n", "Global flags:\n", "--version"} {
			i := strings.Index(out.String(), h)
			if i <= last && !(i == 0 && last == -1) {
				t.Errorf("%s: %q missing or out of order:\n%s", arg, h, out.String())
			}
			last = i
		}
		if g, w := strings.Index(out.String(), "--ipam-grace duration"), strings.Index(out.String(), "Webhook flags:"); g < 0 || g > w {
			t.Errorf("%s: --ipam-grace not among the IPAM reclaimer flags:\n%s", arg, out.String())
		}
	}
}

func TestUnexpectedArguments(t *testing.T) {
	if _, err := parseFlags([]string{"--ipam=false", "extra"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "extra") {
		t.Errorf("extra argument: %v", err)
	}
}
