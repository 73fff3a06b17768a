package server

import (
	"context"
	"net"
	"slices"
)

// errDenied is Redis 7's reply, word for word, to a client that protected mode
// refuses.
const errDenied = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside."

// Protected mode, as in Redis: a node without a password serves only clients on
// loopback, unless protected_mode is false. Its peers are not clients, and in
// containers they connect from other hosts: a connection from elsewhere may still
// authenticate as a peer's (DHT.AUTHPEER), and nothing else; anything else is
// answered DENIED and the connection closed. Without a password there is no cluster
// secret either, unless one is configured, and then anyone could compute a proof;
// so a node admits such a connection as a peer's only when it comes from an address
// of that peer's host (its addr in the config, resolved).

// deniedByProtectedMode reports whether protected mode refuses a client at remote:
// it is on, no password is set and remote is not a loopback address.
func deniedByProtectedMode(protected, hasPassword bool, remote net.Addr) bool {
	if !protected || hasPassword {
		return false
	}
	tcp, ok := remote.(*net.TCPAddr)
	return !ok || !tcp.IP.IsLoopback()
}

// fromPeerHost reports whether remote is an address of host (a name or an IP).
func fromPeerHost(ctx context.Context, host string, remote net.Addr) bool {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok {
		return false
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ips, func(ip net.IPAddr) bool { return ip.IP.Equal(tcp.IP) })
}
