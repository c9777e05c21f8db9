package datasetindex

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// hostTree builds a host filesystem under a fresh rootfs: files are host paths with their
// content, links are host paths with their targets, written as they would be on the host.
func hostTree(t *testing.T, files map[string]string, links map[string]string) string {
	t.Helper()
	rootfs := tempDir(t)
	for hostPath, content := range files {
		onDisk := filepath.Join(rootfs, hostPath)
		require.NoError(t, os.MkdirAll(filepath.Dir(onDisk), 0o755))
		require.NoError(t, os.WriteFile(onDisk, []byte(content), 0o644))
	}
	for hostPath, target := range links {
		onDisk := filepath.Join(rootfs, hostPath)
		require.NoError(t, os.MkdirAll(filepath.Dir(onDisk), 0o755))
		require.NoError(t, os.Symlink(target, onDisk))
	}
	return rootfs
}

func TestResolverResolve(t *testing.T) {
	files := map[string]string{
		"/data/helmet/train.txt":    "a\n",
		"/data/helmet/sub/file.txt": "b\n",
		"/data/other.txt":           "c\n",
		"/data/helmetfoo/x.txt":     "d\n",
		"/etc/passwd":               "root:x:0:0\n",
		"/var/lib/sedna/x.txt":      "e\n",
	}
	links := map[string]string{
		"/data/helmet/to-etc":          "/etc/passwd",
		"/data/helmet/to-etc-rel":      "../../etc/passwd",
		"/data/helmet/etcdir":          "/etc",
		"/data/helmet/rel-inside":      "sub/file.txt",
		"/data/helmet/abs-inside":      "/data/helmet/sub/file.txt",
		"/data/helmet/chain":           "rel-inside",
		"/data/helmet/subdir-link":     "/data/helmet/sub",
		"/data/helmet/to-sedna":        "/var/lib/sedna/x.txt",
		"/data/helmet/parent-inside":   "../helmet/sub/file.txt",
		"/data/helmet/parent-outside":  "../other.txt",
		"/data/helmet/via-etc":         "/etc/../data/helmet/train.txt",
		"/data/helmet/up":              "..",
		"/data/helmet/loop1":           "loop2",
		"/data/helmet/loop2":           "loop1",
		"/data/helmet/dangling":        "/data/helmet/missing.txt",
		"/data/helmet/dangling-far":    "/nowhere/x.txt",
		"/data/helmet/sub/deeper/link": "../../train.txt",
	}
	rootfs := hostTree(t, files, links)
	// A link written with the LC's own view of the file: on the host that path does not exist.
	lcView := filepath.Join(rootfs, "data/helmet/train.txt")
	require.NoError(t, os.Symlink(lcView, filepath.Join(rootfs, "data/helmet/lc-view")))

	resolver, err := NewResolver(rootfs, []string{"/data/helmet", "/var/lib/sedna"})
	require.NoError(t, err)

	cases := map[string]struct {
		hostPath string
		// want is the host path whose copy under rootfs Resolve must return.
		want    string
		wantErr error
	}{
		"plain file":                       {hostPath: "/data/helmet/train.txt", want: "/data/helmet/train.txt"},
		"second root":                      {hostPath: "/var/lib/sedna/x.txt", want: "/var/lib/sedna/x.txt"},
		"redundant slashes and dots":       {hostPath: "/data//helmet/./sub/file.txt", want: "/data/helmet/sub/file.txt"},
		"relative path":                    {hostPath: "data/helmet/train.txt", wantErr: ErrOutsideRoots},
		"empty path":                       {hostPath: "", wantErr: ErrOutsideRoots},
		"dot-dot that stays inside":        {hostPath: "/data/helmet/../helmet/train.txt", wantErr: ErrOutsideRoots},
		"dot-dot at the end":               {hostPath: "/data/helmet/sub/..", wantErr: ErrOutsideRoots},
		"dot-dot escaping":                 {hostPath: "/data/helmet/../../etc/passwd", wantErr: ErrOutsideRoots},
		"absolute path outside":            {hostPath: "/etc/passwd", wantErr: ErrOutsideRoots},
		"root itself is outside":           {hostPath: "/", wantErr: ErrOutsideRoots},
		"sibling sharing a name prefix":    {hostPath: "/data/helmetfoo/x.txt", wantErr: ErrOutsideRoots},
		"parent of a root":                 {hostPath: "/data/other.txt", wantErr: ErrOutsideRoots},
		"NUL byte":                         {hostPath: "/data/helmet/train.txt\x00", wantErr: ErrOutsideRoots},
		"symlink to absolute outside":      {hostPath: "/data/helmet/to-etc", wantErr: ErrOutsideRoots},
		"symlink to relative outside":      {hostPath: "/data/helmet/to-etc-rel", wantErr: ErrOutsideRoots},
		"directory symlink to outside":     {hostPath: "/data/helmet/etcdir/passwd", wantErr: ErrOutsideRoots},
		"symlink relative inside":          {hostPath: "/data/helmet/rel-inside", want: "/data/helmet/sub/file.txt"},
		"symlink absolute inside":          {hostPath: "/data/helmet/abs-inside", want: "/data/helmet/sub/file.txt"},
		"chain of symlinks inside":         {hostPath: "/data/helmet/chain", want: "/data/helmet/sub/file.txt"},
		"directory symlink inside":         {hostPath: "/data/helmet/subdir-link/file.txt", want: "/data/helmet/sub/file.txt"},
		"symlink into another root":        {hostPath: "/data/helmet/to-sedna", want: "/var/lib/sedna/x.txt"},
		"symlink passing above the root":   {hostPath: "/data/helmet/parent-inside", want: "/data/helmet/sub/file.txt"},
		"symlink to a sibling of the root": {hostPath: "/data/helmet/parent-outside", wantErr: ErrOutsideRoots},
		"symlink detouring outside":        {hostPath: "/data/helmet/via-etc", wantErr: ErrOutsideRoots},
		"symlink to the parent of a root":  {hostPath: "/data/helmet/up", wantErr: ErrOutsideRoots},
		"symlink in a subdirectory":        {hostPath: "/data/helmet/sub/deeper/link", want: "/data/helmet/train.txt"},
		"symlink in the LC's own view":     {hostPath: "/data/helmet/lc-view", wantErr: ErrOutsideRoots},
		"symlink loop":                     {hostPath: "/data/helmet/loop1", wantErr: ErrOutsideRoots},
		"missing file":                     {hostPath: "/data/helmet/missing.txt", wantErr: ErrNotFound},
		"missing directory":                {hostPath: "/data/helmet/nodir/x.txt", wantErr: ErrNotFound},
		"file used as a directory":         {hostPath: "/data/helmet/train.txt/x", wantErr: ErrNotFound},
		"dangling symlink":                 {hostPath: "/data/helmet/dangling", wantErr: ErrNotFound},
		"dangling symlink outside":         {hostPath: "/data/helmet/dangling-far", wantErr: ErrOutsideRoots},
		"missing root directory":           {hostPath: "/var/lib/sedna/none/x.txt", wantErr: ErrNotFound},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := resolver.Resolve(tc.hostPath)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				require.ErrorContains(t, err, fmt.Sprintf("%q", tc.hostPath), "the error must name the path")
				return
			}
			require.NoError(t, err)
			require.Equal(t, filepath.Join(rootfs, tc.want), got)
		})
	}
}

func TestResolverRootfsBehindSymlink(t *testing.T) {
	real := hostTree(t, map[string]string{"/data/train.txt": "a\nb\n"}, nil)
	linked := filepath.Join(tempDir(t), "rootfs")
	require.NoError(t, os.Symlink(real, linked))

	resolver, err := NewResolver(linked, []string{"/data"})
	require.NoError(t, err)
	got, err := resolver.Resolve("/data/train.txt")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(real, "data/train.txt"), got, "the returned path must be free of symlinks")

	count, _, err := NewCounter(FormatTxt, Options{}).Update(got)
	require.NoError(t, err, "a resolved path must be openable without following symlinks")
	require.Equal(t, 2, count)
}

func TestResolverAllowedRootBehindSymlink(t *testing.T) {
	// The root is compared with where links lead, so a linked root needs its target as a root too.
	rootfs := hostTree(t, map[string]string{"/mnt/disk1/data/train.txt": "a\n"}, map[string]string{"/data": "/mnt/disk1/data"})
	resolver, err := NewResolver(rootfs, []string{"/data"})
	require.NoError(t, err)
	_, err = resolver.Resolve("/data/train.txt")
	require.ErrorIs(t, err, ErrOutsideRoots)

	resolver, err = NewResolver(rootfs, []string{"/data", "/mnt/disk1/data"})
	require.NoError(t, err)
	got, err := resolver.Resolve("/data/train.txt")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(rootfs, "mnt/disk1/data/train.txt"), got)
}

func TestResolverWholeHostRoot(t *testing.T) {
	rootfs := hostTree(t, map[string]string{"/srv/train.txt": "a\n"}, map[string]string{"/srv/up": "../../../srv/train.txt"})
	resolver, err := NewResolver(rootfs, []string{"/"})
	require.NoError(t, err)
	// ".." above the host's "/" stays at "/", as on the host, and never reaches the LC's own files.
	got, err := resolver.Resolve("/srv/up")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(rootfs, "srv/train.txt"), got)
}

func TestNewResolverValidates(t *testing.T) {
	rootfs := tempDir(t)
	aFile := filepath.Join(rootfs, "file")
	require.NoError(t, os.WriteFile(aFile, nil, 0o644))

	cases := map[string]struct {
		rootfs   string
		roots    []string
		wantText string
	}{
		"relative root":        {rootfs: rootfs, roots: []string{"/data", "data"}, wantText: `"data" is not an absolute`},
		"trailing slash":       {rootfs: rootfs, roots: []string{"/data/"}, wantText: `"/data/" is not clean`},
		"dot element":          {rootfs: rootfs, roots: []string{"/data/./x"}, wantText: `"/data/./x" is not clean`},
		"dot-dot element":      {rootfs: rootfs, roots: []string{"/data/../etc"}, wantText: `"/data/../etc" is not clean`},
		"empty root":           {rootfs: rootfs, roots: []string{""}, wantText: `"" is not an absolute`},
		"no roots":             {rootfs: rootfs, roots: nil, wantText: "no allowed data roots"},
		"relative rootfs":      {rootfs: "rootfs", roots: []string{"/data"}, wantText: `"rootfs" is not an absolute`},
		"missing rootfs":       {rootfs: filepath.Join(rootfs, "missing"), roots: []string{"/data"}, wantText: "missing"},
		"rootfs is not a dir":  {rootfs: aFile, roots: []string{"/data"}, wantText: "is not a directory"},
		"valid configuration":  {rootfs: rootfs, roots: []string{"/data", "/var/lib/sedna"}},
		"whole host permitted": {rootfs: rootfs, roots: []string{"/"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			resolver, err := NewResolver(tc.rootfs, tc.roots)
			if tc.wantText == "" {
				require.NoError(t, err)
				require.NotNil(t, resolver)
				return
			}
			require.ErrorContains(t, err, tc.wantText)
			require.Nil(t, resolver)
		})
	}
}

func TestResolveThenCount(t *testing.T) {
	rootfs := hostTree(t, map[string]string{"/data/helmet/train_data.txt": "a.jpg\nb.jpg\n"}, nil)
	resolver, err := NewResolver(rootfs, []string{"/data"})
	require.NoError(t, err)
	counter := NewCounter(FormatTxt, Options{})

	path, err := resolver.Resolve("/data/helmet/train_data.txt")
	require.NoError(t, err)
	count, changed, err := counter.Update(path)
	require.NoError(t, err)
	require.Equal(t, 2, count)
	require.True(t, changed)

	// Someone with write access to /data swaps the file for a link to a host secret after the
	// path was resolved: the count must not follow it.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Symlink("/etc/shadow", path))
	_, _, err = counter.Update(path)
	require.ErrorIs(t, err, ErrOutsideRoots)

	// Resolving again, as the dataset manager does every period, refuses it too.
	_, err = resolver.Resolve("/data/helmet/train_data.txt")
	require.ErrorIs(t, err, ErrOutsideRoots)
}
