// Package hostfs is the one way the local controller opens, creates, renames and removes files
// below a directory of the node it does not fully trust: the allowed data roots (dataset index
// files, job output directories, trained models) and the hot-update root, all of which the
// workers of a job can write too.
//
// A Root holds a handle on such a directory. Every operation names a path relative to it and is
// resolved by the kernel beneath the handle: on Linux with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, relative to an O_PATH descriptor of
// the directory, one path element at a time for mkdir, rename and remove (mkdirat, renameat and
// unlinkat act on the last element without following it). No symlink is followed anywhere on
// the way, so a worker that swaps a directory of the path for a symlink, even between a check
// and the open, makes the operation fail (ELOOP or EXDEV) instead of redirecting it, and ".."
// never climbs above the Root.
//
// Kernels before 5.6 and seccomp profiles that do not know openat2 refuse the call (ENOSYS, or
// EPERM from older container runtimes). Roots then fall back to Go's os.Root, which is also
// confined: it resolves every path beneath its directory descriptor and refuses a symlink whose
// target leaves the root, checked by the same descriptor-relative walk, so a swapped-in link
// cannot lead outside either. The difference: os.Root follows a (relative) symlink that stays
// inside the root, so a worker able to plant links can still redirect a read or write to another
// file below the same root (another job's output below the same data root, say); with openat2
// any symlink is refused. Mode reports which one is in use.
//
// OpenNoSymlinks is the absolute-path variant for callers that hold a path already checked
// against the roots (datasetindex.Counter): openat2 with RESOLVE_NO_SYMLINKS, else an O_NOFOLLOW
// open whose result is checked against the kernel's own name of the descriptor
// (/proc/self/fd), which differs from the requested path when a directory on it was a symlink.
package hostfs
