// Package buildinfo carries the version stamped into every plexus binary.
package buildinfo

// Version is set at link time with -X; "dev" for plain `go build`.
var Version = "dev"

// String returns a one-line description for VERSION output and logs.
func String(binary string) string {
	return binary + " " + Version
}

// Header carries plexusd's version on every answer of its HTTP address.
const Header = "Plexus-Version"

// Mismatch says how the version of another plexus component (who, e.g.
// "plexusd on node-1") differs from this binary's (self names it); "" when
// they agree or theirs is unknown (an older component that does not say).
func Mismatch(self, who, theirs string) string {
	if theirs == "" || theirs == Version {
		return ""
	}
	return self + " " + Version + " talks to " + who + " " + theirs + ": versions differ; upgrade the older one"
}
