package wal

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes what was written to f durable. An operating system file is synced
// with fdatasync, which unlike fsync writes neither the file's times nor, while
// writes stay within the file, its size: one disk write fewer per sync of a
// preallocated segment.
func datasync(f File) error {
	o, ok := f.(*os.File)
	if !ok {
		return f.Sync()
	}
	for {
		err := unix.Fdatasync(int(o.Fd()))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
