package lincheck

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Group is what a dht node with replication on says of one replication group: a
// line of its INFO replication such as
//
//	dht_group_0:slots=0-5460,role=leader,term=3,leader=n1,commit=3,applied=3,held=0
//
// or, for a group the node is not a member of (role "none"), only the leader its
// peers report:
//
//	dht_group_3:slots=9830-13106,role=none,term=2,leader=n4
//
// Fault tests use it to pick the leader to take away and to see a new one
// elected and a returning node catch up.
type Group struct {
	ID    int
	Slots string // the group's slot range, "0-5460"
	Role  string // this node's Raft role: "leader", "follower", ...
	Term  uint64
	// Leader is the name of the node this one takes for the group's leader,
	// "none" while it knows of none.
	Leader          string
	Commit, Applied uint64
	// Held reports that this node's replica does not vote yet: it restarted
	// empty and has not caught up.
	Held bool
	// Learner reports that this node's replica is a learner of the group: it
	// restarted empty, was added back afresh, and votes once it caught up.
	Learner bool
	// ReadRounds is how many read-index rounds the replica asked Raft for.
	ReadRounds uint64
}

// ParseReplication returns the groups of a dht node's INFO replication reply,
// by group id. A reply without groups (replication off) gives an empty map.
func ParseReplication(info string) (map[int]Group, error) {
	out := map[int]Group{}
	for line := range strings.Lines(info) {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		id, err := strconv.Atoi(strings.TrimPrefix(name, "dht_group_"))
		if !ok || !strings.HasPrefix(name, "dht_group_") || err != nil {
			continue // another line, or a follower's line (dht_group_0_follower_n2)
		}
		g := Group{ID: id}
		seen := map[string]bool{}
		for f := range strings.SplitSeq(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			seen[k] = true
			switch k {
			case "slots":
				g.Slots = v
			case "role":
				g.Role = v
			case "leader":
				g.Leader = v
			case "held":
				g.Held = v == "1"
			case "learner":
				g.Learner = v == "1"
			case "term", "commit", "applied", "read_rounds":
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("lincheck: INFO replication line %q: %s: %w", strings.TrimSpace(line), k, err)
				}
				switch k {
				case "term":
					g.Term = n
				case "commit":
					g.Commit = n
				case "read_rounds":
					g.ReadRounds = n
				default:
					g.Applied = n
				}
			}
		}
		want := []string{"slots", "role", "term", "leader", "commit", "applied", "held"}
		if g.Role == "none" {
			want = want[:4]
		}
		for _, k := range want {
			if !seen[k] {
				return nil, fmt.Errorf("lincheck: INFO replication line %q has no %s", strings.TrimSpace(line), k)
			}
		}
		out[id] = g
	}
	return out, nil
}

// Replication asks the node c talks to for its INFO replication and returns
// its groups, by id.
func Replication(ctx context.Context, c redis.Cmdable) (map[int]Group, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO replication: %w", err)
	}
	return ParseReplication(info)
}
