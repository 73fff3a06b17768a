package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// memStore is an in-memory Store: one map behind a mutex, with the semantics
// of GET, SET NX, SET and MSET, and an in-process barrier.
type memStore struct {
	mu      sync.Mutex
	data    map[string][]byte
	batches map[int]int // batch size -> count
	// fail, if set, decides the error of each request.
	fail func(r Request) error
	// lose, if set, names keys whose writes are acknowledged but dropped.
	lose func(key string) bool
	// latency is added to every batch.
	latency time.Duration
	// barrier meets the clients sharing it; nil means every Barrier call passes.
	barrier *memBarrier
	readies int
}

func newMemStore() *memStore {
	return &memStore{data: map[string][]byte{}, batches: map[int]int{}}
}

func (m *memStore) Ready(context.Context, int) error {
	m.mu.Lock()
	m.readies++
	m.mu.Unlock()
	return nil
}

func (m *memStore) Barrier(ctx context.Context, name string, count int, timeout time.Duration) error {
	if m.barrier == nil {
		return nil
	}
	return m.barrier.arrive(ctx, name, count, timeout)
}

func (m *memStore) NewExecutor() Executor { return memExec{m} }

func (m *memStore) Get(_ context.Context, keys []string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = m.data[k]
	}
	return out, nil
}

func (m *memStore) Close() error { return nil }

type memExec struct{ m *memStore }

func (e memExec) Exec(_ context.Context, reqs []Request, out []Outcome) ExecInfo {
	if e.m.latency > 0 {
		time.Sleep(e.m.latency)
	}
	m := e.m
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches[len(reqs)]++
	for i, r := range reqs {
		if m.fail != nil {
			if err := m.fail(r); err != nil {
				out[i] = Outcome{Err: err}
				continue
			}
		}
		switch r.Op {
		case OpGet:
			_, ok := m.data[r.Keys[0]]
			out[i] = Outcome{Hit: ok}
		case OpPutIfAbsent:
			_, exists := m.data[r.Keys[0]]
			if !exists && (m.lose == nil || !m.lose(r.Keys[0])) {
				m.data[r.Keys[0]] = append([]byte(nil), r.Values[0]...)
			}
			out[i] = Outcome{Hit: !exists}
		default:
			for j, k := range r.Keys {
				if m.lose == nil || !m.lose(k) {
					m.data[k] = append([]byte(nil), r.Values[j]...)
				}
			}
			out[i] = Outcome{Hit: true}
		}
	}
	return ExecInfo{}
}

// memBarrier is an in-process barrier with DHT.BARRIER's semantics.
type memBarrier struct {
	mu      sync.Mutex
	arrived map[string]int
	release map[string]chan struct{}
}

func newMemBarrier() *memBarrier {
	return &memBarrier{arrived: map[string]int{}, release: map[string]chan struct{}{}}
}

func (b *memBarrier) arrive(ctx context.Context, name string, count int, timeout time.Duration) error {
	b.mu.Lock()
	ch, ok := b.release[name]
	if !ok {
		ch = make(chan struct{})
		b.release[name] = ch
	}
	b.arrived[name]++
	if b.arrived[name] == count {
		close(ch)
		delete(b.release, name)
		delete(b.arrived, name)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		b.mu.Lock()
		defer b.mu.Unlock()
		n := b.arrived[name]
		b.arrived[name]--
		return fmt.Errorf("barrier '%s': %d of %d clients arrived within %s", name, n, count, timeout)
	}
}
