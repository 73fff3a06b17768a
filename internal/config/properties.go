package config

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
)

// properties is the original assignment's properties file: one server port shared by
// every host, a list of host addresses, and the workload settings.
type properties struct {
	NodeIPs           []string `json:"node_ips"`
	ServerPort        int      `json:"server_port"`
	NumBuckets        int      `json:"dht_num_buckets"`
	ReplicationDegree int      `json:"replication_degree"`
	KeyRange          *int64   `json:"key_range"`
	NumRequests       *int     `json:"num_requests"`
	NumOperations     *int     `json:"num_operations"`
	NumThreads        *int     `json:"num_threads"`
	MultiPutNum       *int     `json:"multi_put_num"`
	ValueSize         *int     `json:"value_size"`
}

// parseProperties converts a properties file to a Config. Node names are n1, n2, ...
// in the order of node_ips; each host serves on server_port.
func parseProperties(data []byte) (Config, error) {
	var p properties
	if errs := decodeFields(data, reflect.ValueOf(&p).Elem(), ""); len(errs) > 0 {
		return Config{}, fmt.Errorf("properties format (node_ips, server_port, ...):\n%w", errors.Join(errs...))
	}
	c := Default()
	if p.ServerPort < 1 || p.ServerPort > 65535 {
		return Config{}, fmt.Errorf("field server_port: %d: must be between 1 and 65535", p.ServerPort)
	}
	for i, ip := range p.NodeIPs {
		c.Nodes = append(c.Nodes, Node{
			Name: "n" + strconv.Itoa(i+1),
			Addr: net.JoinHostPort(strings.TrimSpace(ip), strconv.Itoa(p.ServerPort)),
		})
	}
	if p.NumBuckets != 0 {
		c.Buckets = p.NumBuckets
	}
	if p.ReplicationDegree != 0 {
		c.ReplicationDegree = p.ReplicationDegree
	}
	w := &c.Workload
	if p.KeyRange != nil {
		w.KeyMin, w.KeyMax = 0, *p.KeyRange
	}
	for _, v := range []*int{p.NumRequests, p.NumOperations} {
		if v != nil {
			w.Requests = *v
		}
	}
	if p.NumThreads != nil {
		w.Threads = *p.NumThreads
	}
	if p.MultiPutNum != nil {
		w.MultiPutNum = *p.MultiPutNum
	}
	if p.ValueSize != nil {
		w.ValueSize = *p.ValueSize
	}
	return c, c.Validate()
}
