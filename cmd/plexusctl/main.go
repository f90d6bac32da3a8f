// Command plexusctl is the plexus command-line tool: it lints manifests
// offline today and will inspect clusters (get, describe, ipam, doctor,
// graph).
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
