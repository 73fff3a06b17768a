package server

import "strings"

// cmdDoc is what COMMAND DOCS tells of a command or subcommand.
type cmdDoc struct {
	summary, since, group, complexity string
}

// commandDocs describes dht's commands and subcommands, in dht's words: since is
// the Redis version that introduced the command, group Redis's group; dht's own
// commands are in the cluster group, since dht's first version.
func commandDocs() map[string]cmdDoc {
	docs := map[string]cmdDoc{}
	add := func(group, since, complexity, lines string) {
		for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
			name, summary, _ := strings.Cut(strings.TrimSpace(l), " ")
			docs[name] = cmdDoc{summary: summary, since: since, group: group, complexity: complexity}
		}
	}
	add("string", "1.0.0", "O(1)", `
		get Returns the string value of a key.
		set Sets the string value of a key, with options for conditions, expiry and the old value.
		setnx Sets a key's value only when the key does not exist.
		incr Adds one to the integer value of a key.
		decr Subtracts one from the integer value of a key.
		incrby Adds a number to the integer value of a key.
		decrby Subtracts a number from the integer value of a key.
		getset Sets a key's value and returns the value it had.`)
	add("string", "1.0.0", "O(N) where N is the length of the returned string.", `
		substr Returns a range of a string value (the old name of GETRANGE).`)
	add("string", "1.0.0", "O(N) where N is the number of keys.", `
		mget Returns the values of the keys.`)
	add("string", "1.0.1", "O(N) where N is the number of keys.", `
		mset Sets the values of the keys, all at once.
		msetnx Sets the values of the keys, all at once, only when none of them exists.`)
	add("string", "2.0.0", "O(1)", `
		append Appends a string to the value of a key, creating the key if it does not exist.
		setex Sets a key's value and its expiry in seconds.`)
	add("string", "2.2.0", "O(1)", `
		strlen Returns the length of a key's value.
		setrange Overwrites part of a key's value at an offset.`)
	add("string", "2.4.0", "O(N) where N is the length of the returned string.", `
		getrange Returns a range of a string value.`)
	add("string", "2.6.0", "O(1)", `
		incrbyfloat Adds a floating-point number to the value of a key.
		psetex Sets a key's value and its expiry in milliseconds.`)
	add("string", "6.2.0", "O(1)", `
		getdel Returns a key's value and deletes the key.
		getex Returns a key's value and changes or removes its expiry.`)
	add("string", "7.0.0", "O(N*M) where N and M are the lengths of the two strings.", `
		lcs Finds the longest common subsequence of two keys' values.`)
	add("generic", "1.0.0", "O(1)", `
		expire Sets a key's expiry in seconds.
		ttl Returns the seconds a key has left to live.
		type Returns the type of a key's value.
		rename Renames a key, replacing the key it is renamed to.
		renamenx Renames a key only when the new name does not exist.`)
	add("generic", "1.0.0", "O(N) where N is the number of keys.", `
		del Deletes the keys.
		exists Counts the keys that exist.`)
	add("generic", "1.2.0", "O(1)", `
		expireat Sets a key's expiry as a Unix time in seconds.`)
	add("generic", "2.2.0", "O(1)", `
		persist Removes a key's expiry.`)
	add("generic", "2.6.0", "O(1)", `
		pexpire Sets a key's expiry in milliseconds.
		pexpireat Sets a key's expiry as a Unix time in milliseconds.
		pttl Returns the milliseconds a key has left to live.`)
	add("generic", "3.2.1", "O(N) where N is the number of keys.", `
		touch Counts the keys that exist, as a read of each.`)
	add("generic", "4.0.0", "O(N) where N is the number of keys.", `
		unlink Deletes the keys.`)
	add("generic", "6.2.0", "O(N) where N is the length of the value.", `
		copy Copies a key's value to another key.`)
	add("generic", "7.0.0", "O(1)", `
		expiretime Returns a key's expiry as a Unix time in seconds.
		pexpiretime Returns a key's expiry as a Unix time in milliseconds.`)
	add("generic", "2.2.3", "O(1)", `
		object A container for commands that describe how a key is kept.
		object|encoding Returns the internal encoding of a key's value.
		object|freq Returns the access frequency of a key (under an LFU eviction policy).
		object|idletime Returns the seconds since a key was last used.
		object|refcount Returns how many references a key's value has.
		object|help Returns help on the OBJECT subcommands.`)
	add("connection", "1.0.0", "O(1)", `
		ping Returns PONG, or the argument.
		echo Returns its argument.
		quit Closes the connection.
		auth Authenticates the connection.
		select Selects the database (only database 0 exists).`)
	add("connection", "2.4.0", "O(1)", `
		client A container for commands about client connections.
		client|getname Returns the name of the connection.
		client|setname Names the connection.
		client|id Returns the id of the connection.
		client|info Describes the connection.
		client|list Describes every client connection.
		client|kill Closes client connections.
		client|reply Turns the replies to the connection off, on, or off for the next command.
		client|no-evict Sets the connection's no-evict flag.
		client|no-touch Sets the connection's no-touch flag.
		client|setinfo Accepts the client library's name and version.
		client|help Returns help on the CLIENT subcommands.`)
	add("connection", "6.0.0", "O(1)", `
		hello Describes the server, authenticating and naming the connection.`)
	add("connection", "2.8.13", "O(N) where N is the number of commands.", `
		command Describes every command.
		command|count Counts the commands.
		command|docs Documents the commands.
		command|getkeys Finds the keys of a command.
		command|getkeysandflags Finds the keys of a command, with how it uses them.
		command|info Describes the commands.
		command|list Lists the commands' names.
		command|help Returns help on the COMMAND subcommands.`)
	add("server", "1.0.0", "O(1)", `
		info Returns the server's information and statistics.
		time Returns the server's time.
		dbsize Counts the keys.`)
	add("server", "2.0.0", "O(N) where N is the number of parameters.", `
		config A container for commands about the server's settings.
		config|get Returns the settings that match patterns.
		config|set Changes settings at run time.
		config|resetstat Resets the statistics of INFO.
		config|rewrite Writes the settings to the config file.
		config|help Returns help on the CONFIG subcommands.`)
	add("server", "2.2.12", "O(N) where N is the number of entries.", `
		slowlog A container for commands about the slow log.
		slowlog|get Returns the newest entries of the slow log.
		slowlog|len Counts the entries of the slow log.
		slowlog|reset Empties the slow log.
		slowlog|help Returns help on the SLOWLOG subcommands.`)
	add("server", "2.8.13", "O(1)", `
		latency A container for commands about the latency monitor.
		latency|doctor Returns a report on the latency spikes the monitor saw.
		latency|graph Draws an event's latency samples.
		latency|history Returns an event's latency samples.
		latency|latest Returns each event's latest and worst latency samples.
		latency|reset Forgets the latency samples of some events, or of all.
		latency|help Returns help on the LATENCY subcommands.`)
	add("server", "7.0.0", "O(N) where N is the number of commands with latency information being retrieved.", `
		latency|histogram Returns the cumulative distribution of the latencies of some commands, or of all.`)
	add("server", "4.0.0", "O(1)", `
		memory A container for commands about memory.
		memory|usage Estimates the bytes a key takes.
		memory|stats Returns figures of memory use.
		memory|help Returns help on the MEMORY subcommands.`)
	add("server", "6.0.0", "O(1)", `
		acl A container for commands about access control.
		acl|cat Lists the command categories, or the commands of one.
		acl|getuser Describes a user.
		acl|list Describes every user as rules.
		acl|users Lists the users' names.
		acl|whoami Returns the connection's user.
		acl|help Returns help on the ACL subcommands.`)
	add("cluster", "3.0.0", "O(1)", `
		cluster A container for commands about the cluster.
		cluster|countkeysinslot Counts the keys of a hash slot.
		cluster|info Describes the cluster's state.
		cluster|keyslot Returns a key's hash slot.
		cluster|myid Returns the node's id.
		cluster|nodes Describes the nodes, in the nodes.conf form.
		cluster|shards Describes the shards.
		cluster|slots Maps the hash slots to the nodes.
		cluster|help Returns help on the CLUSTER subcommands.
		readonly Lets the connection read from replicas.
		readwrite Makes the connection read from leaders only.
		asking Accepts the next command for a slot that is moving.
		wait Waits for the connection's writes to reach replicas.`)
	add("cluster", "1.0.0", "O(1)", `
		dht.authpeer dht: authenticates a connection as another node's.
		dht.ping dht: probes a node.
		dht.raft dht: carries Raft messages between nodes.
		dht.keycount dht: counts the keys of slot ranges.
		dht.txn dht: a step of a transaction across slot ranges.
		dht.barrier dht: waits until enough clients have arrived at a named barrier.`)
	return docs
}
