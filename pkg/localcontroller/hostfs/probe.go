package hostfs

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
)

// CheckWritable tells whether files can be created in the directory dir (a path in the LC's
// filesystem, trusted like OpenRoot's): it creates and removes a hidden, uniquely named file.
// The LC calls it at start for every allowed data root, to warn at once about a root it will not
// be able to write (a read-only mount fails with EROFS) rather than at a job's first round.
func CheckWritable(dir string) error {
	root, err := OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }() // a directory handle only
	suffix := make([]byte, 8)
	if _, err := rand.Read(suffix); err != nil {
		return fmt.Errorf("naming a probe file: %w", err)
	}
	name := ".sedna-write-probe-" + hex.EncodeToString(suffix)
	file, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return errors.Join(file.Close(), root.Remove(name))
}
