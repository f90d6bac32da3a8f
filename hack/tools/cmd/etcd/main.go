// Command etcd is the etcd server for the plexus test bed, built from the
// go.etcd.io/etcd/server/v3 version pinned in this module's go.mod.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
