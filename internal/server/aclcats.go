package server

import (
	"fmt"
	"strings"

	"github.com/dhtkv/dht/internal/acl"
)

// aclCategories lists, by category, the commands and subcommands of each category,
// as Redis 7.0 assigns them (TestRedisDiffACLCat compares them with redis-server's
// ACL CAT). Every command of the table is in at least one (TestACLCategories checks);
// the subcommands named here are the ones users' rules and checks know apart from
// their command. The dht.* commands are dht's own.
func aclCategories() map[string]string {
	return map[string]string{
		"keyspace": `copy dbsize del exists expire expireat expiretime flushall flushdb keys persist
		pexpire pexpireat pexpiretime pttl randomkey rename renamenx scan touch ttl type unlink
		object|encoding object|freq object|help object|idletime object|refcount`,
		"read": `dbsize exists expiretime get getrange keys lcs mget pexpiretime pttl randomkey scan
		strlen substr touch ttl type
		memory|usage object|encoding object|freq object|idletime object|refcount`,
		"write": `append copy decr decrby del expire expireat getdel getex getset incr incrby
		incrbyfloat mset msetnx persist pexpire pexpireat psetex rename renamenx set setex setnx
		setrange unlink flushall flushdb dht.barrier dht.txn dht.flush dht.exec`,
		"string": `append decr decrby get getdel getex getrange getset incr incrby incrbyfloat lcs
		mget mset msetnx psetex set setex setnx setrange strlen substr`,
		"fast": `time append asking auth dbsize decr decrby discard echo exists expire expireat expiretime get
		getdel getex getset hello incr incrby incrbyfloat mget multi persist pexpire pexpireat
		pexpiretime ping pttl quit readonly readwrite renamenx select setnx strlen touch ttl type
		unlink unwatch watch dht.authpeer dht.ping dht.raft dht.keycount dht.txn dht.version`,
		"slow": `acl client cluster command config copy del exec flushall flushdb getrange info keys lcs
		mset msetnx psetex randomkey rename scan set setex setrange substr wait dht.barrier dht.flush
		dht.exec
		acl|cat acl|getuser acl|help acl|list acl|users acl|whoami
		client|getname client|help client|id client|setinfo client|setname
		cluster|countkeysinslot cluster|help cluster|info cluster|keyslot cluster|myid
		cluster|nodes cluster|shards cluster|slots
		command|count command|docs command|help command|info command|list
		config|get config|help config|resetstat config|rewrite config|set
		client|info client|kill client|list client|no-evict client|no-touch client|reply command|getkeys command|getkeysandflags memory memory|help memory|stats memory|usage object object|encoding object|freq object|help object|idletime object|refcount slowlog slowlog|get slowlog|help slowlog|len slowlog|reset
		latency latency|doctor latency|graph latency|help latency|histogram latency|history latency|latest latency|reset`,
		"admin": `acl|getuser acl|list acl|users config|get config|resetstat config|rewrite config|set
		dht.ping dht.raft dht.keycount dht.txn dht.flush dht.version dht.exec
		client|kill client|list client|no-evict slowlog|get slowlog|len slowlog|reset
		latency|doctor latency|graph latency|histogram latency|history latency|latest latency|reset`,
		"dangerous": `flushall flushdb info keys acl|getuser acl|list acl|users config|get config|resetstat config|rewrite
		config|set
		client|kill client|list client|no-evict slowlog|get slowlog|len slowlog|reset
		latency|doctor latency|graph latency|histogram latency|history latency|latest latency|reset`,
		"connection": `asking auth command echo hello ping quit readonly readwrite select wait
		dht.authpeer
		client|getname client|help client|id client|setinfo client|setname
		command|count command|docs command|help command|info command|list
		client|info client|kill client|list client|no-evict client|no-touch client|reply command|getkeys command|getkeysandflags`,
		"blocking":    `dht.barrier`,
		"transaction": `discard exec multi unwatch watch`,
	}
}

// newACLCatalog numbers the commands of table, and the subcommands aclCategories
// names, for the users' permission bitsets, and gives each command its number.
func newACLCatalog(table map[string]*command) (*acl.Catalog, error) {
	cats := map[string][]string{}
	for name := range table {
		cats[name] = nil
	}
	for cat, names := range aclCategories() {
		for _, name := range strings.Fields(names) {
			cats[name] = append(cats[name], cat)
		}
	}
	catalog, err := acl.NewCatalog(cats)
	if err != nil {
		return nil, err
	}
	for name, c := range table {
		c.aclID, _ = catalog.ID(name)
		for _, sc := range c.subcommands {
			if sc.cmd != nil {
				sc.cmd.aclID, _ = catalog.ID(sc.name)
			}
		}
	}
	for name := range cats {
		parent, sub, ok := strings.Cut(name, "|")
		if !ok {
			continue
		}
		c := table[parent]
		if c == nil {
			return nil, fmt.Errorf("acl: subcommand %q of no command", name)
		}
		if c.subs == nil {
			c.subs = map[string]int{}
		}
		c.subs[sub], _ = catalog.ID(name)
	}
	return catalog, nil
}
