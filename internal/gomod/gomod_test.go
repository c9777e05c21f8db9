package gomod

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The module of a dependency is found with its files; an unknown module is an error naming it.
func TestDir(t *testing.T) {
	dir, err := Dir("", "github.com/stretchr/testify")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dir, "require", "require.go"))
	require.NoError(t, err)

	_, err = Dir("", "example.invalid/no-such-module@v0.0.1")
	require.ErrorContains(t, err, "example.invalid/no-such-module")
}
