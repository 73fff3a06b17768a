package server

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/redcon"

	"github.com/dhtkv/dht/internal/txn"
)

// TestExecAndFlushWaitForTransactionLocks: while a transaction across groups holds a
// key (prepared, not decided), an EXEC that writes the key and a FLUSHALL wait; once
// the transaction is aborted they run, and a new transaction is turned away while a
// FLUSHALL waits.
func TestExecAndFlushWaitForTransactionLocks(t *testing.T) {
	cfg := oneNodeConfig(t)
	s := runServer(t, cfg)
	for !s.Healthy() {
		time.Sleep(5 * time.Millisecond)
	}
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()

	key := []byte("{t}k")
	id := txn.ID{TS: time.Now().UnixNano(), Node: 9, Seq: 1}
	apply := func(cmd txn.Command) string {
		w := session{db: s.store}
		cmdTxn(s, &w, cmd.AppendArgs([][]byte{[]byte("DHT.TXN")}))
		return string(w.out)
	}
	prepare := func(id txn.ID, key []byte) txn.Reply {
		out := apply(txn.Command{Verb: txn.Prepare, Route: key, ID: id, Record: key,
			Ops: []txn.Op{{Kind: txn.OpPut, Key: key, Value: []byte("txn")}}})
		_, v := redcon.ReadNextRESP([]byte(out))
		r, err := txn.ParseReply(v.Bytes())
		if err != nil {
			t.Fatalf("PREPARE: %q: %v", out, err)
		}
		return r
	}
	abort := func(id txn.ID) { apply(txn.Command{Verb: txn.Abort, Route: key, ID: id}) }

	for _, tc := range []struct {
		name string
		run  func() (string, error)
		want string
	}{
		{"EXEC", func() (string, error) {
			cmds, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, string(key), "exec", 0)
				return nil
			})
			if err != nil {
				return "", err
			}
			return cmds[0].(*redis.StatusCmd).Val(), nil
		}, "OK"},
		{"FLUSHALL", func() (string, error) { return c.FlushAll(ctx).Result() }, "OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := prepare(id, key); r.Vote != txn.VoteYes {
				t.Fatalf("PREPARE voted %v", r.Vote)
			}
			done := make(chan string, 1)
			go func() {
				r, err := tc.run()
				if err != nil {
					r = err.Error()
				}
				done <- r
			}()
			select {
			case r := <-done:
				t.Fatalf("%s answered %q while a transaction held the key", tc.name, r)
			case <-time.After(300 * time.Millisecond):
			}
			if tc.name == "FLUSHALL" {
				// Another key of the group, which no transaction holds.
				later := id
				later.Seq++
				if r := prepare(later, []byte("{u}free")); r.Vote != txn.VoteDie {
					abort(later)
					t.Fatalf("a new transaction while FLUSHALL waits voted %v; want it turned away", r.Vote)
				}
			}
			abort(id)
			select {
			case r := <-done:
				if r != tc.want {
					t.Fatalf("%s = %q once the transaction was aborted; want %q", tc.name, r, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s still waits after the transaction was aborted", tc.name)
			}
			id.Seq += 2
		})
	}
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after FLUSHALL = %d, %v", n, err)
	}
}

// TestVoteWithoutLog: a prepare that meets a lock is answered without the log, wait
// or die; a DECIDE only when it waits: one that dies goes to the log, which records
// the attempt aborted.
func TestVoteWithoutLog(t *testing.T) {
	s := runServer(t, oneNodeConfig(t))
	key := []byte("{v}k")
	holder := txn.ID{TS: time.Now().UnixNano(), Node: 9, Seq: 1}
	older, younger := txn.ID{TS: holder.TS - 1, Node: 8, Seq: 1}, txn.ID{TS: holder.TS + 1, Node: 8, Seq: 2}
	ops := []txn.Op{{Kind: txn.OpPut, Key: key, Value: []byte("v")}}
	w := session{db: s.store}
	cmdTxn(s, &w, txn.Command{Verb: txn.Prepare, Route: key, ID: holder, Record: key, Ops: ops}.AppendArgs([][]byte{[]byte("DHT.TXN")}))
	vote := func(verb txn.Verb, id txn.ID) string {
		args := txn.Command{Verb: verb, Route: key, ID: id, Record: key, Ops: ops, Commit: verb == txn.Decide}.AppendArgs([][]byte{[]byte("DHT.TXN")})
		out := s.voteWithoutLog(s.commands["dht.txn"], args)
		if out == nil {
			return "log"
		}
		_, v := redcon.ReadNextRESP(out)
		r, err := txn.ParseReply(v.Bytes())
		if err != nil {
			t.Fatalf("%s: %q: %v", verb, out, err)
		}
		return map[txn.Vote]string{txn.VoteWait: "wait", txn.VoteDie: "die"}[r.Vote]
	}
	for _, tc := range []struct {
		verb txn.Verb
		id   txn.ID
		want string
	}{
		{txn.Prepare, younger, "die"},
		{txn.Prepare, older, "wait"},
		{txn.Decide, younger, "log"},
		{txn.Decide, older, "wait"},
	} {
		if got := vote(tc.verb, tc.id); got != tc.want {
			t.Errorf("%s of the %s transaction: %s, want %s", tc.verb, map[bool]string{true: "older", false: "younger"}[tc.id == older], got, tc.want)
		}
	}
}
