package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ID identifies one attempt of a transaction. TS is when the transaction first
// started (Unix ns) and is kept across its retries, so that a transaction grows older
// as it retries and wait-die lets it through eventually; Node and Seq tell apart the
// attempts of every coordinator.
type ID struct {
	TS   int64
	Node uint32
	Seq  uint64
}

// Older reports whether a started before b: under wait-die an older transaction
// waits for a younger one holding a lock, and a younger one gives up.
func (a ID) Older(b ID) bool {
	switch {
	case a.TS != b.TS:
		return a.TS < b.TS
	case a.Node != b.Node:
		return a.Node < b.Node
	}
	return a.Seq < b.Seq
}

// IsZero reports whether a is the zero ID, which names no transaction.
func (a ID) IsZero() bool { return a == ID{} }

// String renders a as TS.Node.Seq, as ParseID reads it.
func (a ID) String() string { return fmt.Sprintf("%d.%d.%d", a.TS, a.Node, a.Seq) }

// ParseID reads an ID written by String.
func ParseID(s string) (ID, error) {
	f := strings.Split(s, ".")
	if len(f) != 3 {
		return ID{}, fmt.Errorf("txn: bad id %q", s)
	}
	ts, err1 := strconv.ParseInt(f[0], 10, 64)
	node, err2 := strconv.ParseUint(f[1], 10, 32)
	seq, err3 := strconv.ParseUint(f[2], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return ID{}, fmt.Errorf("txn: bad id %q: %w", s, err)
	}
	return ID{TS: ts, Node: uint32(node), Seq: seq}, nil
}

// OpKind is what a transaction does with one key.
type OpKind uint8

// The kinds of operations. A transaction either only reads or only writes.
const (
	// OpRead reads the key under a shared lock.
	OpRead OpKind = iota + 1
	// OpPut writes the value, clearing any expiry (MSET).
	OpPut
	// OpPutNX writes the value if no key of the transaction exists (MSETNX).
	OpPutNX
	// OpDel removes the key (DEL, UNLINK).
	OpDel
)

// Op is one key's part in a transaction.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
}

// Verb is what a Command asks of a group.
type Verb uint8

// The commands a coordinator sends to the groups.
const (
	// Prepare locks the keys of Ops in the group and votes.
	Prepare Verb = iota + 1
	// Commit applies the prepared writes of the transaction and releases its locks.
	Commit
	// Abort releases the transaction's locks without writing.
	Abort
	// Decide writes the transaction's record in the group of its first key: Commit
	// true asks for committed, false for aborted; a record already there stays.
	// A commit carries the record group's own Ops (and Record), which the group
	// prepares and, on a yes, commits with the record in one step.
	Decide
	// Forget drops the record of a transaction whose participants all resolved.
	Forget
)

var verbNames = map[Verb]string{Prepare: "PREPARE", Commit: "COMMIT", Abort: "ABORT", Decide: "DECIDE", Forget: "FORGET"}

func (v Verb) String() string {
	if n, ok := verbNames[v]; ok {
		return n
	}
	return fmt.Sprintf("Verb(%d)", v)
}

// Command is one step of the protocol, replicated in the group that Route (a key)
// belongs to.
type Command struct {
	Verb  Verb
	Route []byte
	ID    ID
	// Record is the transaction's first key, whose group holds its record
	// (Prepare, and Decide with Ops).
	Record []byte
	// Commit is the decision asked for (Decide).
	Commit bool
	// Ops are the group's keys (Prepare; Decide of a commit).
	Ops []Op
	// Parts are a key of each other participant group (Decide of a commit): the
	// record keeps them, so that its group can tell them the outcome and forget the
	// record when the coordinator could not.
	Parts [][]byte
}

// maxOps bounds the operations of one Prepare, as the server bounds a command's
// arguments; ParseCommand refuses more.
const maxOps = 1 << 20

// partsMark precedes the Parts of a Decide among its arguments. An operation's kind
// is one byte, so the mark cannot be taken for one (and logs written before Parts
// existed read as before).
const partsMark = "PARTS"

// AppendArgs appends the command's arguments, as ParseCommand reads them: the verb,
// the route, the id, then the decision for Decide, then where there are Ops: Record,
// for Decide the mark and the Parts (one argument), and the Ops.
func (c Command) AppendArgs(args [][]byte) [][]byte {
	args = append(args, []byte(c.Verb.String()), c.Route, []byte(c.ID.String()))
	if c.Verb == Decide {
		args = append(args, []byte(strconv.FormatBool(c.Commit)))
	}
	if len(c.Ops) == 0 {
		return args
	}
	args = append(args, c.Record)
	if c.Verb == Decide && len(c.Parts) > 0 {
		args = append(args, []byte(partsMark), appendKeys(nil, c.Parts))
	}
	for _, op := range c.Ops {
		args = append(args, []byte{byte('0' + op.Kind)}, op.Key)
		if op.Kind == OpPut || op.Kind == OpPutNX {
			args = append(args, op.Value)
		}
	}
	return args
}

// ParseCommand reads the arguments AppendArgs wrote. It refuses anything else with
// an error, never by panicking.
func ParseCommand(args [][]byte) (Command, error) {
	if len(args) < 3 {
		return Command{}, fmt.Errorf("txn: %d arguments, want at least 3", len(args))
	}
	var c Command
	for v, n := range verbNames {
		if strings.EqualFold(string(args[0]), n) {
			c.Verb = v
		}
	}
	if c.Verb == 0 {
		return Command{}, fmt.Errorf("txn: unknown verb %.32q", args[0])
	}
	c.Route = args[1]
	id, err := ParseID(string(args[2]))
	if err != nil {
		return Command{}, err
	}
	c.ID = id
	rest := args[3:]
	switch c.Verb {
	case Prepare:
		if len(rest) < 3 {
			return Command{}, errors.New("txn: PREPARE without operations")
		}
		return c, c.parseOps(rest)
	case Decide:
		if len(rest) == 0 {
			return Command{}, errors.New("txn: DECIDE without a decision")
		}
		b, err := strconv.ParseBool(string(rest[0]))
		if err != nil {
			return Command{}, fmt.Errorf("txn: DECIDE: %w", err)
		}
		c.Commit = b
		if len(rest) > 1 {
			if !c.Commit || len(rest) < 4 {
				return Command{}, errors.New("txn: DECIDE: operations only with a commit")
			}
			return c, c.parseOps(rest[1:])
		}
	default:
		if len(rest) != 0 {
			return Command{}, fmt.Errorf("txn: %s takes no more arguments", c.Verb)
		}
	}
	return c, nil
}

// parseOps reads Record, the Parts of a Decide, and Ops from args.
func (c *Command) parseOps(args [][]byte) error {
	c.Record, args = args[0], args[1:]
	if c.Verb == Decide && len(args) > 1 && string(args[0]) == partsMark {
		parts, err := parseKeys(args[1])
		if err != nil || len(parts) == 0 {
			return fmt.Errorf("txn: %s: malformed participant keys", c.Verb)
		}
		c.Parts, args = parts, args[2:]
	}
	for len(args) > 0 {
		if len(args[0]) != 1 || len(args) < 2 || len(c.Ops) >= maxOps {
			return fmt.Errorf("txn: %s: malformed operation", c.Verb)
		}
		op := Op{Kind: OpKind(args[0][0] - '0'), Key: args[1]}
		args = args[2:]
		switch op.Kind {
		case OpPut, OpPutNX:
			if len(args) == 0 {
				return fmt.Errorf("txn: %s: a put without its value", c.Verb)
			}
			op.Value, args = args[0], args[1:]
		case OpRead, OpDel:
		default:
			return fmt.Errorf("txn: %s: unknown operation %.8q", c.Verb, op.Kind)
		}
		c.Ops = append(c.Ops, op)
	}
	return checkOps(c.Ops)
}

// checkOps refuses a transaction that mixes reads and writes.
func checkOps(ops []Op) error {
	reads := 0
	for _, op := range ops {
		if op.Kind == OpRead {
			reads++
		}
	}
	if reads != 0 && reads != len(ops) {
		return errors.New("txn: a transaction either reads or writes")
	}
	return nil
}

// Vote is a participant's answer to Prepare.
type Vote uint8

// The votes.
const (
	// VoteYes: the keys are locked and the writes will be made on Commit.
	VoteYes Vote = iota + 1
	// VoteNo: a condition failed (MSETNX found a key); nothing is locked.
	VoteNo
	// VoteWait: a younger transaction holds a key; nothing is locked; ask again.
	VoteWait
	// VoteDie: an older transaction holds a key; nothing is locked; give up this
	// attempt and start another.
	VoteDie
	// VoteResolved: the transaction was already committed or aborted here.
	VoteResolved
)

// Status is the state of a transaction record.
type Status uint8

// The states of a record. A record is written once, either way, and never changes.
const (
	// StatusNone: no record (a reply to Forget, or for a transaction never decided).
	StatusNone Status = iota
	// StatusCommitted: the transaction committed; every participant applies it.
	StatusCommitted
	// StatusAborted: the transaction aborted; every participant drops it.
	StatusAborted
)

func (s Status) String() string {
	return [...]string{"none", "committed", "aborted"}[min(int(s), 2)]
}

// Reply is what a group answers a Command.
type Reply struct {
	Vote Vote
	// Holder is the transaction whose lock made the vote Wait or Die; HolderRecord is
	// its first key and HolderStuck whether it has held its locks past the timeout.
	Holder       ID
	HolderRecord []byte
	HolderStuck  bool
	// Status is the record's state (Decide).
	Status Status
	// Existed counts the keys of a write that existed at Prepare (DEL's reply).
	Existed int
	// Values and Found are what a read found, by operation.
	Values [][]byte
	Found  []bool
}

// AppendReply appends r's encoding to b.
func AppendReply(b []byte, r Reply) []byte {
	b = append(b, byte(r.Vote), byte(r.Status), boolByte(r.HolderStuck))
	b = appendID(b, r.Holder)
	b = appendBytes(b, r.HolderRecord)
	b = binary.AppendUvarint(b, uint64(r.Existed))
	b = binary.AppendUvarint(b, uint64(len(r.Values)))
	for i, v := range r.Values {
		b = append(b, boolByte(r.Found[i]))
		b = appendBytes(b, v)
	}
	return b
}

// ParseReply reads a reply written by AppendReply.
func ParseReply(b []byte) (Reply, error) {
	d := decoder{b: b}
	var r Reply
	r.Vote, r.Status, r.HolderStuck = Vote(d.byte()), Status(d.byte()), d.byte() == 1
	r.Holder = d.id()
	r.HolderRecord = d.bytes()
	r.Existed = int(d.uvarint())
	n := d.uvarint()
	if n > uint64(len(b)) {
		return Reply{}, errors.New("txn: malformed reply")
	}
	for range n {
		r.Found = append(r.Found, d.byte() == 1)
		r.Values = append(r.Values, d.bytes())
	}
	if d.err != nil || len(d.b) != 0 {
		return Reply{}, errors.New("txn: malformed reply")
	}
	return r, nil
}

// appendKeys appends keys as one argument: each key's length, then the key.
func appendKeys(b []byte, keys [][]byte) []byte {
	for _, k := range keys {
		b = appendBytes(b, k)
	}
	return b
}

// parseKeys reads what appendKeys wrote.
func parseKeys(b []byte) ([][]byte, error) {
	d := decoder{b: b}
	var keys [][]byte
	for len(d.b) > 0 && d.err == nil && len(keys) < maxOps {
		keys = append(keys, d.bytes())
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errors.New("txn: malformed participant keys")
	}
	return keys, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendID(b []byte, id ID) []byte {
	b = binary.AppendVarint(b, id.TS)
	b = binary.AppendUvarint(b, uint64(id.Node))
	return binary.AppendUvarint(b, id.Seq)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decoder reads what the append functions wrote; its first error sticks and makes
// every later read return zero.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("txn: truncated data")

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errShort
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) id() ID {
	ts := d.varint()
	node := d.uvarint()
	return ID{TS: ts, Node: uint32(node), Seq: d.uvarint()}
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.err = errShort
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
