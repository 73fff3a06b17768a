package local

import "syscall"

// childAttr makes a node process die with its parent, so that a `dht local` that is
// killed outright leaves no orphan nodes behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
