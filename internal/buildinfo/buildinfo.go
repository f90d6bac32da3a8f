// Package buildinfo carries the version stamped into every plexus binary.
package buildinfo

// Version is set at link time with -X; "dev" for plain `go build`.
var Version = "dev"

// String returns a one-line description for VERSION output and logs.
func String(binary string) string {
	return binary + " " + Version
}
