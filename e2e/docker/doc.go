// Package docker holds dht's container tests: each test builds the dht image
// FROM scratch, starts a cluster with one container per node on a private
// Docker network with pinned addresses, drives it with go-redis, and kills,
// pauses or cuts off nodes with the docker CLI.
//
// The tests skip when no Docker engine answers, unless CI=true, where that is
// a failure; -short skips them too. Every container, network and image a test
// creates carries the label dht.e2e and is removed when the test ends, passed
// or failed. If a test binary is itself killed, remove the leftovers with
//
//	docker rm -f $(docker ps -aq --filter label=dht.e2e)
//	docker network prune -f --filter label=dht.e2e
//	docker image prune -af --filter label=dht.e2e
//
// or `make e2e-clean`.
package docker
