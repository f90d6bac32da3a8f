package main

import (
	"regexp"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

var kebab = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// Every flag of every verb is --kebab-case, as kubectl's are.
func TestFlagsAreKebabCase(t *testing.T) {
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		check := func(f *pflag.Flag) {
			seen[f.Name] = true
			if !kebab.MatchString(f.Name) {
				t.Errorf("%s: flag --%s is not kebab-case", c.CommandPath(), f.Name)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.PersistentFlags().VisitAll(check)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd("plexusctl"))
	if !seen["dry-run"] || !seen["chunk-size"] { // of ipam import, of the root
		t.Errorf("the walk missed verbs: saw %v", seen)
	}
}
