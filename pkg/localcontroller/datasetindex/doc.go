// Package datasetindex owns what the local controller needs to count the samples of a Dataset
// whose spec.url is a path on the edge node: turning that host path into a path the LC may open,
// and counting the samples of the index file incrementally.
//
// The LC runs in a container that sees the host's filesystem (or parts of it) under a root mount
// dir (ROOTFS_MOUNT_DIR, e.g. /rootfs), so the host path /data/helmet/train.txt is read as
// /rootfs/data/helmet/train.txt. Upstream Sedna reads any host path a Dataset names through a
// read-write mount of the host's "/", so whoever may create a Dataset may make the LC read any
// file on the node. Resolver closes that: only paths under operator-configured data roots are
// readable, ".." is refused outright, and symlinks are followed the way the host would follow
// them (an absolute target means a host path, that is a path under the rootfs) and refused as
// soon as they lead outside the roots. Counter then opens the resolved path without following
// symlinks, and Resolver.Open and OpenRoot open a resolved path beneath the allowed root it lies
// under, both through package hostfs (openat2 with RESOLVE_NO_SYMLINKS on Linux, with a confined
// fallback), so a symlink swapped in after resolution is not followed either.
//
// Counter reads only the bytes appended since the previous Update, detects a file that was
// rewritten (other inode, shorter than what was read, or changed bytes at the start or just
// before the read offset) and then recounts it, and bounds memory and work with a maximum file
// size and line length. Its state is a small JSON-serialisable value so the LC can persist it and
// not re-read a large file after a restart. Unlike upstream, the first Update always reports a
// change, so an empty dataset gets its numberOfSamples of 0 reported too.
//
// The package does not decide when to count, does not download s3 datasets, does not persist
// state and does not report anything to the global manager; the dataset manager does. It reads
// files and never writes them. It needs a Unix system: file identity comes from syscall.Stat_t.
package datasetindex
