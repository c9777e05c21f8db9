// Package fileversion tells one version of a file from the next by what a stat says of it, so
// that a file read often (a token, a CA bundle, a model) is parsed again only when it changed.
// A file replaced by rename (the kubelet's projected and ConfigMap volumes, a model copied in
// beside the old one) has a new inode even when its size and modification time are the old
// ones, as with `cp -p` or an archive; a file rewritten in place changes its size or time.
package fileversion

import (
	"os"
	"syscall"
	"time"
)

// Version is what a stat says of one version of a file. The zero Version is no file.
type Version struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

// Of returns the version info describes.
func Of(info os.FileInfo) Version {
	v := Version{size: info.Size(), mtime: info.ModTime()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		v.dev, v.ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev's type differs between platforms
	}
	return v
}

// Equal reports whether v and o are the same version of a file.
func (v Version) Equal(o Version) bool {
	return v.dev == o.dev && v.ino == o.ino && v.size == o.size && v.mtime.Equal(o.mtime)
}
