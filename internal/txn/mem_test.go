package txn

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// memKV is a group's keys in a map.
type memKV map[string][]byte

func (m memKV) Get(key []byte) ([]byte, bool) { v, ok := m[string(key)]; return v, ok }
func (m memKV) Put(key, value []byte)         { m[string(key)] = slices.Clone(value) }
func (m memKV) Del(key []byte)                { delete(m, string(key)) }

// fault is what happens to one command sent to an in-memory group.
type fault int

const (
	deliver     fault = iota
	loseRequest       // the command never arrives
	loseReply         // the command is applied, its reply lost
	repeat            // the command is applied twice
	late              // the command is applied late, after the group's next few, its reply lost
)

var errLost = errors.New("message lost")

// memGroups are groups in one process, each a participant over a map, whose log
// clock advances a millisecond with every command. fault, when set, decides the fate
// of each command; down groups lose every command.
type memGroups struct {
	mu    sync.Mutex
	parts []*Participant
	kvs   []memKV
	now   time.Time
	fault func(group int, c Command) fault
	down  map[int]bool
	calls int
	// held are the commands arriving late, by group, each with how many of the
	// group's commands are still to come first.
	held map[int][]heldCommand
}

type heldCommand struct {
	c     Command
	after int
}

func newMemGroups(n int, opts Options) *memGroups {
	m := &memGroups{now: time.Unix(1_000_000, 0), down: map[int]bool{}}
	for range n {
		m.parts = append(m.parts, NewParticipant(opts))
		m.kvs = append(m.kvs, memKV{})
	}
	return m
}

// groupOf maps keys "g<digit>..." to group <digit>.
func groupOf(key []byte) int { return int(key[1] - '0') }

func (m *memGroups) Call(ctx context.Context, c Command) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	g := groupOf(c.Route)
	m.calls++
	m.now = m.now.Add(time.Millisecond)
	f := deliver
	if m.fault != nil {
		f = m.fault(g, c)
	}
	if m.down[g] || f == loseRequest {
		return Reply{}, errLost
	}
	if f == late {
		if m.held == nil {
			m.held = map[int][]heldCommand{}
		}
		m.held[g] = append(m.held[g], heldCommand{c, 1 + m.calls%3})
		return Reply{}, errLost
	}
	r := m.parts[g].Apply(m.kvs[g], m.now, c)
	m.applyHeld(g)
	if f == repeat {
		r = m.parts[g].Apply(m.kvs[g], m.now, c)
	}
	if f == loseReply {
		return Reply{}, errLost
	}
	// The reply crosses a network: encode it as a group would.
	return ParseReply(AppendReply(nil, r))
}

// applyHeld applies the late commands of group g whose turn came: those with no
// more of the group's commands to wait for.
func (m *memGroups) applyHeld(g int) {
	if len(m.held[g]) == 0 {
		return
	}
	n := 0
	for _, h := range m.held[g] {
		if h.after--; h.after <= 0 {
			m.parts[g].Apply(m.kvs[g], m.now, h.c)
			continue
		}
		m.held[g][n] = h
		n++
	}
	m.held[g] = m.held[g][:n]
}

func (m *memGroups) setDown(g int, down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down[g] = down
}

func (m *memGroups) get(key string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kvs[groupOf([]byte(key))][key]
	return string(v), ok
}

func (m *memGroups) set(key, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kvs[groupOf([]byte(key))][key] = []byte(value)
}

// advance moves the log clock of every group by d.
func (m *memGroups) advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.now = m.now.Add(d)
}

// stuck lists the stuck transactions of every group that is up.
func (m *memGroups) stuck() []Stuck {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Stuck
	for g, p := range m.parts {
		if !m.down[g] {
			out = append(out, p.Stuck(m.now)...)
		}
	}
	return out
}

// recoverAll resolves every stuck transaction, as the groups' leaders do.
func (m *memGroups) recoverAll(t *testing.T) (statuses []Status) {
	t.Helper()
	for _, s := range m.stuck() {
		st, err := Recover(t.Context(), m, s)
		if err != nil {
			t.Fatalf("recover %s: %v", s.ID, err)
		}
		statuses = append(statuses, st)
	}
	return statuses
}

// finishAll finishes, through c, every committed transaction whose record outlived
// the timeout in a group that is up, as the record groups' leaders do.
func (m *memGroups) finishAll(t *testing.T, c *Coordinator) int {
	t.Helper()
	m.mu.Lock()
	var todo []Unfinished
	for g, p := range m.parts {
		if !m.down[g] {
			todo = append(todo, p.Unfinished(m.now)...)
		}
	}
	m.mu.Unlock()
	for _, u := range todo {
		if err := c.Finish(t.Context(), u); err != nil {
			t.Fatalf("finish %s: %v", u.ID, err)
		}
	}
	return len(todo)
}

// locked counts the transactions holding locks in every group.
func (m *memGroups) locked() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, p := range m.parts {
		n += p.Prepared()
	}
	return n
}

func (m *memGroups) records() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, p := range m.parts {
		c, a := p.Records()
		n += c + a
	}
	return n
}

// clock is the groups' log clock, which the coordinators take their ids' times from.
func (m *memGroups) clock() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

func newCoordinator(m *memGroups) *Coordinator {
	return &Coordinator{Groups: m, GroupOf: groupOf, Node: 1, Now: m.clock,
		Poll: time.Millisecond, Cleanup: time.Second}
}

func puts(kv ...string) []Op {
	var ops []Op
	for i := 0; i+1 < len(kv); i += 2 {
		ops = append(ops, Op{Kind: OpPut, Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return ops
}

func reads(keys ...string) []Op {
	var ops []Op
	for _, k := range keys {
		ops = append(ops, Op{Kind: OpRead, Key: []byte(k)})
	}
	return ops
}

var testOptions = Options{Timeout: 100 * time.Millisecond, Retain: time.Minute}
