package lincheck_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/dhtkv/dht/internal/lincheck"
)

func TestParseReplication(t *testing.T) {
	info := "# Replication\r\nrole:master\r\nconnected_slaves:2\r\ndht_replication_degree:3\r\n" +
		"dht_group_0:slots=0-5460,role=leader,term=3,leader=n1,commit=17,applied=16,held=0,learner=0,membership_changes=0,read_rounds=5\r\n" +
		"dht_group_0_follower_n2:match=17,lag=0,active=1\r\n" +
		"dht_group_2:slots=10923-16383,role=follower,term=0,leader=none,commit=0,applied=0,held=1\r\n" +
		"dht_group_3:slots=12000-16383,role=none,term=4,leader=n4\r\n"
	got, err := lincheck.ParseReplication(info)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]lincheck.Group{
		0: {ID: 0, Slots: "0-5460", Role: "leader", Term: 3, Leader: "n1", Commit: 17, Applied: 16, ReadRounds: 5},
		2: {ID: 2, Slots: "10923-16383", Role: "follower", Leader: "none", Held: true},
		3: {ID: 3, Slots: "12000-16383", Role: "none", Term: 4, Leader: "n4"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseReplication\n got %+v\nwant %+v", got, want)
	}

	if got, err := lincheck.ParseReplication("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"); err != nil || len(got) != 0 {
		t.Errorf("ParseReplication without groups = %v, %v; want no groups", got, err)
	}
	for _, bad := range []string{
		"dht_group_1:slots=0-5460,role=leader,term=x,leader=n1,commit=1,applied=1,held=0\r\n",
		"dht_group_1:slots=0-5460,role=leader,term=1,commit=1,applied=1,held=0\r\n",
	} {
		if _, err := lincheck.ParseReplication(bad); err == nil || !strings.Contains(err.Error(), "dht_group_1") {
			t.Errorf("ParseReplication(%q) = %v; want an error naming the line", bad, err)
		}
	}
}
