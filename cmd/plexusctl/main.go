// Command plexusctl is the plexus command-line tool: it lints manifests
// offline and inspects clusters (get, describe, graph, doctor, ipam). As
// kubectl-plexus on the PATH it is also the kubectl plugin "kubectl plexus".
package main

import "os"

func main() {
	os.Exit(run(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
