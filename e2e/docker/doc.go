// Package docker holds dht's container tests. TestContainers builds the dht
// image FROM scratch once, and each of its scenarios starts a cluster with one
// container per node on a private Docker network with pinned addresses,
// drives it with go-redis, and kills, pauses or cuts off nodes with the docker
// CLI. The Replicated scenarios run at replication degree 3 under a recorded
// workload that package lincheck checks for linearizability and lost writes;
// their nodes are also on a second network, through which the tests reach a
// node that is cut off from the cluster network. Other tests check that the
// files under deploy/ agree with their configs.
//
// The container tests skip when no Docker engine answers, unless CI=true,
// where that is a failure; -short skips them too. Every container, network
// and image they create carries the label dht.e2e and is removed when its
// test ends, passed or failed. If a test binary is itself killed, remove the
// leftovers (with no container test running) with `make e2e-clean`:
//
//	docker rm -f $(docker ps -aq --filter label=dht.e2e)
//	docker network prune -f --filter label=dht.e2e
//	docker image prune -af --filter label=dht.e2e
package docker
