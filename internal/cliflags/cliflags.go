// Package cliflags is how plexus's daemons take flags, the way Kubernetes
// components do: pflag's --kebab-case names, listed by group in --help.
//
// It also keeps the command lines of the previous release working, for one
// release, with a warning: a renamed flag's old spelling (Rename, e.g.
// plexusd's camelCase --apiServer) and Go's flag package's single-dash long
// flags (-config=/x, -ipam-grace 1m), which pflag would read as shorthands.
// Both are rewritten to the new spelling before pflag parses.
package cliflags

import (
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/spf13/pflag"
)

// Set is a program's flags, in named groups.
type Set struct {
	name    string
	groups  []group
	renamed map[string]string // old spelling → new name
	all     *pflag.FlagSet
	// Out gets the --help text (default os.Stdout); Err the deprecation
	// warnings (default os.Stderr).
	Out, Err io.Writer
}

type group struct {
	title string
	fs    *pflag.FlagSet
}

// New returns the empty flag set of the program name.
func New(name string) *Set {
	s := &Set{name: name, renamed: map[string]string{}, Out: os.Stdout, Err: os.Stderr}
	s.all = pflag.NewFlagSet(name, pflag.ContinueOnError)
	s.all.SortFlags = false
	s.all.SetOutput(io.Discard) // errors are returned, help goes to Out
	s.all.Usage = func() { s.PrintUsage(s.Out) }
	return s
}

// Group returns the flags listed under the heading title in --help,
// creating the group after the others on first use.
func (s *Set) Group(title string) *pflag.FlagSet {
	for _, g := range s.groups {
		if g.title == title {
			return g.fs
		}
	}
	fs := pflag.NewFlagSet(title, pflag.ContinueOnError)
	fs.SortFlags = false
	s.groups = append(s.groups, group{title, fs})
	return fs
}

// Rename accepts old, the previous spelling of the flag name, with a
// deprecation warning. It does nothing when old is name.
func (s *Set) Rename(old, name string) {
	if old != name {
		s.renamed[old] = name
	}
}

// Flags returns every flag of every group, for Changed, Lookup and Visit
// after Parse.
func (s *Set) Flags() *pflag.FlagSet {
	for _, g := range s.groups {
		g.fs.VisitAll(func(f *pflag.Flag) {
			switch prev := s.all.Lookup(f.Name); {
			case prev == nil:
				s.all.AddFlag(f)
			case prev != f:
				panic(fmt.Sprintf("%s: flag --%s defined twice", s.name, f.Name))
			}
		})
	}
	return s.all
}

// Parse parses args (without the program name). An old spelling is
// rewritten to the new one and named once in a warning on Err. -h or
// --help prints the help on Out and returns pflag.ErrHelp.
func (s *Set) Parse(args []string) error {
	fs := s.Flags()
	return fs.Parse(s.rewrite(fs, args))
}

// rewrite turns the previous release's spellings into the current ones.
func (s *Set) rewrite(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	warned := map[string]bool{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(out, args[i:]...)
		}
		name, value, hasValue, dashes := split(arg)
		if dashes == 0 || dashes == 1 && (len(name) < 2 || unicode.IsDigit(rune(name[0]))) {
			out = append(out, arg) // not a flag, or a shorthand or -1
			continue
		}
		newName := name
		if n, ok := s.renamed[name]; ok {
			newName = n
		}
		if (dashes == 1 || newName != name) && name != "help" && fs.Lookup(newName) != nil {
			old := strings.Repeat("-", dashes) + name
			if !warned[old] {
				warned[old] = true
				fmt.Fprintf(s.Err, "%s: flag %s is deprecated and will be removed in a future release; use --%s\n", s.name, old, newName)
			}
		}
		arg = "--" + newName
		if hasValue {
			arg += "=" + value
		}
		out = append(out, arg)
		// "--flag value": the value is no flag, whatever it looks like.
		if f := fs.Lookup(newName); f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// split parses "-name", "--name" or either with "=value".
func split(arg string) (name, value string, hasValue bool, dashes int) {
	switch {
	case strings.HasPrefix(arg, "--"):
		dashes = 2
	case strings.HasPrefix(arg, "-") && arg != "-":
		dashes = 1
	default:
		return "", "", false, 0
	}
	name, value, hasValue = strings.Cut(arg[dashes:], "=")
	return name, value, hasValue, dashes
}

// PrintUsage writes the flags of each group under its heading.
func (s *Set) PrintUsage(w io.Writer) {
	for i, g := range s.groups {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s flags:\n\n%s", g.title, g.fs.FlagUsagesWrapped(0))
	}
}

// Kebab returns the kebab-case spelling of a camelCase name: apiServer →
// api-server, serveIPAM → serve-ipam, ipamConfDir → ipam-conf-dir.
func Kebab(camel string) string {
	var b strings.Builder
	r := []rune(camel)
	for i, c := range r {
		if unicode.IsUpper(c) {
			// A word starts at an upper-case letter after a lower-case one,
			// or at the last upper-case letter of an acronym before a
			// lower-case one (IPAMConf → ipam-conf).
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])) {
				b.WriteByte('-')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
