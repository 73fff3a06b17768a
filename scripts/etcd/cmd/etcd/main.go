// Command etcd is etcd's server, built from its module at the version go.mod names,
// for scripts/etcd-vs-dht.sh.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
