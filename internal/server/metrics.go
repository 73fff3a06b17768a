package server

import (
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the node's Prometheus metrics, on its own registry (several nodes may
// share one process under dht local).
type metrics struct {
	unknown       prometheus.Counter
	forwarded     prometheus.Counter
	forwardErrors prometheus.Counter
	peerUp        *prometheus.GaugeVec
	authFailures  prometheus.Counter
	// deniedCmd and deniedKey count the commands refused NOPERM: a command, or a
	// key, the user may not use.
	deniedCmd, deniedKey prometheus.Counter
	// Replication.
	proposals     prometheus.Counter
	commitLatency prometheus.Histogram
	leaderChanges prometheus.Counter
	snapshots     *prometheus.CounterVec
	raftSent      prometheus.Counter
	raftDropped   prometheus.Counter
	// Persistence.
	fsyncLatency prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	r := s.registry
	m := &metrics{
		unknown: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_unknown_commands_total", Help: "Commands refused as unknown.",
		}),
		forwarded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_forwarded_total", Help: "Commands forwarded to the owning peer.",
		}),
		forwardErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_forward_errors_total", Help: "Forwarded commands that got no reply.",
		}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_auth_failures_total", Help: "Failed authentications: wrong passwords of clients, wrong cluster secrets of peers.",
		}),
		peerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dht_peer_up", Help: "1 when the peer answers probes with the same config.",
		}, []string{"peer"}),
		proposals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_proposals_total", Help: "Proposals (batches of write commands) this node made to its groups.",
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dht_commit_latency_seconds", Help: "From proposing a batch of writes to having it applied.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_leader_changes_total", Help: "Changes of a slot range's leader seen by this node (elections and hand-backs).",
		}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dht_snapshots_total", Help: "Snapshots of slot ranges: taken here, sent to a member that fell behind, restored here.",
		}, []string{"kind"}),
		raftSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_raft_messages_sent_total", Help: "Raft messages delivered to peers.",
		}),
		raftDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dht_raft_messages_dropped_total", Help: "Raft messages that could not be delivered (Raft sends them again).",
		}),
		fsyncLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dht_wal_fsync_seconds", Help: "Time to fsync the node's write-ahead log.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18),
		}),
	}
	denied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dht_acl_denied_total", Help: "Commands refused with NOPERM, by what the user may not use: a command, or a key.",
	}, []string{"reason"})
	m.deniedCmd, m.deniedKey = denied.WithLabelValues("command"), denied.WithLabelValues("key")
	for name := range s.peers {
		m.peerUp.WithLabelValues(name).Set(0)
	}
	r.MustRegister(newCommandCollector(s), m.unknown, m.forwarded, m.forwardErrors, m.peerUp, m.authFailures, denied,
		m.commitLatency, m.leaderChanges, m.snapshots, m.raftSent, m.raftDropped,
		m.proposals, m.fsyncLatency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dht_wal_bytes", Help: "Bytes in the node's write-ahead log segments."},
			func() float64 { return float64(s.diskStats().LogBytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dht_last_snapshot_seconds", Help: "How long writing the last snapshot to disk took."},
			func() float64 { return s.diskStats().LastSnapshotDur.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dht_keys", Help: "Keys stored on this node."},
			func() float64 { return float64(s.store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dht_connected_clients", Help: "Open client connections."},
			func() float64 {
				s.clientsMu.Lock()
				defer s.clientsMu.Unlock()
				return float64(len(s.clients))
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dht_cluster_state_ok", Help: "1 when cluster_state is ok."},
			func() float64 { return boolGauge(s.clusterOK()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// commandCollector exports the commands' counters (see cmdStats) as
// dht_commands_total: the calls that ran and those refused before running.
type commandCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func newCommandCollector(s *Server) commandCollector {
	return commandCollector{s, prometheus.NewDesc("dht_commands_total", "Commands received, by command.", []string{"command"}, nil)}
}

// Describe implements prometheus.Collector.
func (cc commandCollector) Describe(ch chan<- *prometheus.Desc) { ch <- cc.desc }

// Collect implements prometheus.Collector.
func (cc commandCollector) Collect(ch chan<- prometheus.Metric) {
	for name, c := range cc.s.commands {
		n := c.stats.calls.Load() + c.stats.rejected.Load()
		for _, sc := range c.subcommands {
			n += sc.stats.calls.Load() + sc.stats.rejected.Load()
		}
		ch <- prometheus.MustNewConstMetric(cc.desc, prometheus.CounterValue, float64(n), name)
	}
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// newAdminServer serves /metrics, /healthz (200 when cluster_state is ok) and, when
// enabled, the Go profiler under /debug/pprof/.
func (s *Server) newAdminServer() *http.Server {
	mux := http.NewServeMux()
	if s.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.members.Healthy() {
			fmt.Fprintln(w, "ok")
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "cluster_state:fail (startup barrier %s; peers not up: %v)\n",
			passedWord(s.members.BarrierPassed()), s.members.NotUp())
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}
