// Command etcd-load puts keys into an etcd cluster from many concurrent clients, each
// on its own connection, and prints the puts per second: the etcd side of
// scripts/etcd-vs-dht.sh, as dht bench --mix put=100 is dht's.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated client URLs of the members")
	clients := flag.Int("clients", 50, "concurrent clients, each on its own connection")
	total := flag.Int("requests", 100000, "puts in all")
	keys := flag.Int("keys", 100000, "distinct keys, taken in turn")
	size := flag.Int("value-size", 32, "bytes per value")
	flag.Parse()
	if err := run(strings.Split(*endpoints, ","), *clients, *total, *keys, *size); err != nil {
		log.Fatal(err)
	}
}

func run(endpoints []string, clients, total, keys, size int) error {
	conns := make([]*clientv3.Client, clients)
	for i := range conns {
		c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
		if err != nil {
			return fmt.Errorf("connecting: %w", err)
		}
		defer c.Close()
		conns[i] = c
	}
	value := strings.Repeat("v", size)
	var next atomic.Int64
	errs := make(chan error, clients)
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(total) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := c.Put(ctx, fmt.Sprintf("key:%d", n%int64(keys)), value)
				cancel()
				if err != nil {
					errs <- fmt.Errorf("put: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("%.0f\n", float64(total)/took.Seconds())
	return nil
}
