package gmclient

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// fileCache holds what was parsed from one file until the file changes. Every dial asks for the
// service-account token and GM's CA bundle, and both rotate, so a dial must see a new file at
// once; reading and parsing them on every dial, though, was 15 % of a simulated fleet's CPU in a
// GM failover, when thousands of LCs redial every few seconds (docs/performance.md). A stat
// tells a new file from the one parsed before: the kubelet writes projected volumes as new files
// behind a symlink it swaps, so a rotation changes the file's inode, and an edit in place changes
// its modification time or size.
type fileCache[T any] struct {
	path  string
	parse func(path string) (T, error)

	mu    sync.Mutex
	id    fileIdentity
	value T
	// loads counts the parses (loadCount).
	loads int
}

// fileIdentity is what a stat says of a file's version.
type fileIdentity struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
	ok       bool
}

func newFileCache[T any](path string, parse func(path string) (T, error)) *fileCache[T] {
	return &fileCache[T]{path: path, parse: parse}
}

// get returns the file's parsed content, parsing it again only when the file changed since the
// last successful parse. A failed parse is returned and the next get tries again.
func (c *fileCache[T]) get() (T, error) {
	info, err := os.Stat(c.path)
	if err != nil {
		// Nothing to cache: parse says what is wrong with the file, as without the cache.
		return c.parse(c.path)
	}
	id := identityOf(info)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.id.ok && c.id == id {
		return c.value, nil
	}
	value, err := c.parse(c.path)
	c.loads++
	if err != nil {
		var zero T
		return zero, err
	}
	c.id, c.value = id, value
	return value, nil
}

func identityOf(info os.FileInfo) fileIdentity {
	id := fileIdentity{size: info.Size(), mtime: info.ModTime(), ok: true}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino //nolint:unconvert // Dev's type differs between platforms
	}
	return id
}

// loadCount returns how many times the file was parsed, for tests.
func (c *fileCache[T]) loadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}
