package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"plexusd run [flags]", "plexusd uninstall [flags]", "plexusd version", "-logLevel"}},
		{[]string{"-h"}, []string{"plexusd uninstall [flags]"}},
		{[]string{"help"}, []string{"plexusd run [flags]", "plexusd uninstall [flags]"}},
		{[]string{"uninstall", "--help"}, []string{"plexusd uninstall [flags]", "remove the plexus CNI configuration", "-confDir"}},
		{[]string{"run", "-nodeName=n", "-help"}, []string{"plexusd run [flags]"}},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := run(tt.args, &out, &errOut)
		if code != 0 || errOut.Len() > 0 {
			t.Errorf("%v: exit %d, stderr %q; want 0 and the help on stdout", tt.args, code, errOut.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: help lacks %q:\n%s", tt.args, w, out.String())
			}
		}
	}
	var out bytes.Buffer
	if code := run([]string{"uninstall", "--help"}, &out, &out); strings.Contains(out.String(), "plexusd run") || code != 0 {
		t.Errorf("uninstall --help lists other commands:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"version"}, &out, &out); code != 0 || out.String() != "plexusd dev\n" {
		t.Errorf("version: exit %d, %q", code, out.String())
	}
}
