package store

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// errDamagedFile marks a store file that bbolt cannot read as a whole: both meta pages invalid,
// a freelist or branch page that is not one, or pages past the end of a truncated file. A single
// damaged value is not this (see CorruptError): it is reported by key and the rest is used.
var errDamagedFile = errors.New("store file is damaged")

// quarantineSuffix is appended (with a UTC time) to the name of a damaged file moved aside.
const quarantineSuffix = ".damaged-"

// openBolt opens path with bbolt and reads every page reachable from the root once, so that a
// damaged file is found here, as an error wrapping errDamagedFile, and not later as a panic in
// the middle of the LC's work. bbolt panics on a page of the wrong type, and a page beyond the
// end of a truncated file is a fault on the memory map; both are turned into errors on this
// goroutine. When bbolt panics inside Open, its file descriptor and map are not released (bbolt
// gives no handle to release them); the caller moves the file aside, so only that descriptor
// leaks, once.
func openBolt(path string, opts *bolt.Options) (db *bolt.DB, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errDamagedFile, r)
			if db != nil {
				_ = db.Close() // damaged; the error above is the one that matters
			}
			db = nil
		}
	}()
	db, err = bolt.Open(path, 0o600, opts)
	if err != nil {
		if damagedOpenError(err) {
			return nil, fmt.Errorf("%w: %w", errDamagedFile, err)
		}
		return nil, err
	}
	if err := db.View(readAllPages); err != nil {
		_ = db.Close() // damaged; the walk's error is the one that matters
		return nil, fmt.Errorf("%w: %w", errDamagedFile, err)
	}
	return db, nil
}

// damagedOpenError reports whether bolt.Open failed because of the file's content (as opposed
// to the lock, permissions or a missing directory). A file written by another bbolt format
// version is not damage and is left alone.
func damagedOpenError(err error) bool {
	return errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) ||
		errors.Is(err, bolterrors.ErrInvalidMapping) || strings.Contains(err.Error(), "file size too small")
}

// readAllPages visits every bucket, key and value, touching each page of every value, so every
// page reachable from the root has been read once.
func readAllPages(tx *bolt.Tx) error {
	var sink byte
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				if child := b.Bucket(k); child != nil {
					if err := walk(child); err != nil {
						return err
					}
				}
				continue
			}
			for i := 0; i < len(v); i += 1024 {
				sink ^= v[i]
			}
			sink ^= v[len(v)-1]
		}
		return nil
	}
	err := tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
	runtime.KeepAlive(sink) // the reads above must happen
	return err
}

// quarantine moves a damaged store file aside, next to where it was, and returns its new path.
func quarantine(path string, now time.Time) (string, error) {
	aside := path + quarantineSuffix + now.UTC().Format("20060102T150405.000000000Z")
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("moving the damaged store file aside: %w", err)
	}
	return aside, nil
}
