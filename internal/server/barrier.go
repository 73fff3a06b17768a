package server

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// maxBarrierTimeout bounds DHT.BARRIER's timeout argument.
const maxBarrierTimeout = time.Hour

// barriers are the named distributed barriers this node serves (dht bench meets at
// one). A barrier lives on the node that owns its name's slot.
type barriers struct {
	mu sync.Mutex
	m  map[string]*barrier
}

type barrier struct {
	count   int
	arrived int
	release chan struct{}
}

func newBarriers() *barriers { return &barriers{m: map[string]*barrier{}} }

// arrive registers one arrival at the barrier name, which releases when count callers
// have arrived. It returns nil at the release, or an error when timeout passes first,
// ctx ends, or count disagrees with the other arrivals'. A released barrier's name is
// forgotten, so it can be used again.
func (b *barriers) arrive(ctx context.Context, name string, count int, timeout time.Duration) error {
	b.mu.Lock()
	br, ok := b.m[name]
	if !ok {
		br = &barrier{count: count, release: make(chan struct{})}
		b.m[name] = br
	}
	if br.count != count {
		b.mu.Unlock()
		return fmt.Errorf("barrier '%s' is waiting for %d clients, not %d", name, br.count, count)
	}
	br.arrived++
	if br.arrived == br.count {
		close(br.release)
		delete(b.m, name)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()

	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-br.release:
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-br.release:
		return nil // released while we were taking the lock
	default:
	}
	arrived := br.arrived
	br.arrived--
	if br.arrived == 0 {
		delete(b.m, name)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("barrier '%s': node shutting down", name)
	}
	return fmt.Errorf("barrier '%s': %d of %d clients arrived within %s", name, arrived, count, timeout)
}

// parseBarrier reads DHT.BARRIER name count timeout-ms.
func parseBarrier(args [][]byte) (count int, timeout time.Duration, err error) {
	count, err = strconv.Atoi(string(args[2]))
	if err != nil || count < 1 || count > 100000 {
		return 0, 0, fmt.Errorf("ERR barrier count must be an integer between 1 and 100000")
	}
	ms, err := strconv.ParseInt(string(args[3]), 10, 64)
	if err != nil || ms < 1 || ms > maxBarrierTimeout.Milliseconds() { // compared in ms: ms*1e6 could overflow
		return 0, 0, fmt.Errorf("ERR barrier timeout must be a number of milliseconds between 1 and %d", maxBarrierTimeout.Milliseconds())
	}
	return count, time.Duration(ms) * time.Millisecond, nil
}

// barrierWait is how long a forwarded DHT.BARRIER may take.
func barrierWait(args [][]byte) time.Duration {
	_, timeout, err := parseBarrier(args)
	if err != nil {
		return 0
	}
	return timeout
}

// cmdBarrier serves DHT.BARRIER name count timeout-ms: it blocks this client until
// count clients have called it with the same name, then answers +OK to all at once.
func cmdBarrier(s *Server, conn *session, args [][]byte) {
	count, timeout, err := parseBarrier(args)
	if err != nil {
		conn.WriteError(err.Error())
		return
	}
	if err := s.barriers.arrive(s.ctx, string(args[1]), count, timeout); err != nil {
		conn.WriteError("ERR " + err.Error())
		return
	}
	conn.WriteString("OK")
}
