package local

import "syscall"

// childAttr makes a node process die with its parent, so that a `dht local` that is
// killed outright leaves no orphan nodes behind, and puts it in its own process
// group, so that Ctrl-C reaches only the parent, which stops the nodes when it is
// ready to (after its bench clients, say).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
}
