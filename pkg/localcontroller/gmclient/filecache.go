package gmclient

import (
	"os"
	"sync"

	"github.com/sedna-go/sedna/pkg/fileversion"
)

// fileCache holds what was parsed from one file until the file changes. Every dial asks for the
// service-account token and GM's CA bundle, and both rotate, so a dial must see a new file at
// once; reading and parsing them on every dial, though, was 15 % of a simulated fleet's CPU in a
// GM failover, when thousands of LCs redial every few seconds (docs/performance.md). A stat
// tells a new file from the one parsed before (fileversion).
type fileCache[T any] struct {
	path  string
	parse func(path string) (T, error)

	mu      sync.Mutex
	version fileversion.Version // of the file value was parsed from
	parsed  bool
	value   T
	// loads counts the parses (loadCount).
	loads int
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
	version := fileversion.Of(info)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parsed && c.version.Equal(version) {
		return c.value, nil
	}
	value, err := c.parse(c.path)
	c.loads++
	if err != nil {
		var zero T
		return zero, err
	}
	c.version, c.parsed, c.value = version, true, value
	return value, nil
}

// loadCount returns how many times the file was parsed, for tests.
func (c *fileCache[T]) loadCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.loads
}
