package model

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const jobDir = "/var/lib/sedna/model-hot-update/default/incrementallearningjob/helmet"

func newHotUpdateManager(t *testing.T) (*Manager, string) {
	t.Helper()
	rootfs := t.TempDir()
	m, err := New(openStore(t), Options{Rootfs: rootfs})
	require.NoError(t, err)
	return m, rootfs
}

func readConfig(t *testing.T, file string) hotUpdateConfig {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	var config hotUpdateConfig
	require.NoError(t, json.Unmarshal(raw, &config))
	return config
}

func TestWriteHotUpdateConfig(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	updated := time.Date(2025, 3, 1, 12, 30, 45, 123456789, time.FixedZone("CET", 3600))

	require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/model-round-1.pb", updated))
	file := filepath.Join(rootfs, jobDir, HotUpdateConfigFile)
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.JSONEq(t, `{"model_config":{"model_path":"/model-hot-update/model-round-1.pb","model_update_time":"2025-03-01T11:30:45.123456789Z"}}`, string(raw))
	info, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, hotUpdateFileMode, info.Mode().Perm(), "workers of any user must read it")
	dirInfo, err := os.Stat(filepath.Dir(file))
	require.NoError(t, err)
	require.Equal(t, hotUpdateDirMode, dirInfo.Mode().Perm())

	// A second update replaces the file and leaves no temporary file behind.
	require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/model-round-2.pb", updated.Add(time.Nanosecond)))
	config := readConfig(t, file)
	require.Equal(t, "/model-hot-update/model-round-2.pb", config.ModelConfig.ModelPath)
	require.Equal(t, "2025-03-01T11:30:45.12345679Z", config.ModelConfig.ModelUpdateTime)
	entries, err := os.ReadDir(filepath.Dir(file))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, HotUpdateConfigFile, entries[0].Name())
}

func TestWriteHotUpdateConfigRefuses(t *testing.T) {
	valid := time.Unix(1700000000, 0)
	tests := map[string]struct {
		hostDir   string
		modelPath string
		when      time.Time
		wantErr   string
	}{
		"relative directory":  {hostDir: "var/lib/sedna/model-hot-update/a", modelPath: "/m", when: valid, wantErr: "not an absolute host path"},
		"dot-dot element":     {hostDir: "/var/lib/sedna/model-hot-update/a/../../../../etc", modelPath: "/m", when: valid, wantErr: `contains a ".." element`},
		"outside the root":    {hostDir: "/etc/cron.d", modelPath: "/m", when: valid, wantErr: "is not below the hot-update root"},
		"sibling of the root": {hostDir: "/var/lib/sedna/model-hot-update-evil/a", modelPath: "/m", when: valid, wantErr: "is not below the hot-update root"},
		"the root itself":     {hostDir: "/var/lib/sedna/model-hot-update/", modelPath: "/m", when: valid, wantErr: "is not below the hot-update root"},
		"NUL byte":            {hostDir: "/var/lib/sedna/model-hot-update/a\x00b", modelPath: "/m", when: valid, wantErr: "NUL byte"},
		"empty model path":    {hostDir: jobDir, when: valid, wantErr: "model path is empty"},
		"zero update time":    {hostDir: jobDir, modelPath: "/m", wantErr: "update time is zero"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, rootfs := newHotUpdateManager(t)
			err := m.WriteHotUpdateConfig(tc.hostDir, tc.modelPath, tc.when)
			require.ErrorContains(t, err, tc.wantErr)
			var written []string
			require.NoError(t, filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					written = append(written, p)
				}
				return err
			}))
			require.Empty(t, written, "a refused write leaves no file")
		})
	}
}

func TestWriteHotUpdateConfigDoesNotFollowSymlinksOutOfTheRoot(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	outside := filepath.Join(rootfs, "etc")
	require.NoError(t, os.MkdirAll(outside, 0o755))
	kindDir := filepath.Join(rootfs, "/var/lib/sedna/model-hot-update/default/incrementallearningjob")
	require.NoError(t, os.MkdirAll(kindDir, 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(kindDir, "helmet")))

	err := m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", time.Now())
	require.Error(t, err)
	entries, readErr := os.ReadDir(outside)
	require.NoError(t, readErr)
	require.Empty(t, entries, "nothing may be written through the symlink")
}

func TestWriteHotUpdateConfigReplacesAPlantedSymlink(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	victim := filepath.Join(rootfs, "etc", "passwd")
	require.NoError(t, os.MkdirAll(filepath.Dir(victim), 0o755))
	require.NoError(t, os.WriteFile(victim, []byte("root:x:0:0\n"), 0o644))
	dir := filepath.Join(rootfs, jobDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	// A worker with the directory mounted could plant this link.
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, HotUpdateConfigFile)))

	require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", time.Now()))
	content, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, "root:x:0:0\n", string(content))
	info, err := os.Lstat(filepath.Join(dir, HotUpdateConfigFile))
	require.NoError(t, err)
	require.True(t, info.Mode().IsRegular(), "the link itself is replaced")
}

// TestWriteHotUpdateConfigReadersNeverSeeAPartialFile polls the file like a worker does while it
// is rewritten many times: every read must decode.
func TestWriteHotUpdateConfigReadersNeverSeeAPartialFile(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	file := filepath.Join(rootfs, jobDir, HotUpdateConfigFile)
	start := time.Unix(1700000000, 0)
	require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m-0.pb", start))

	var (
		done      atomic.Bool
		reads     atomic.Int64
		wg        sync.WaitGroup
		readerErr error
	)
	wg.Go(func() {
		for !done.Load() {
			raw, err := os.ReadFile(file)
			if err != nil {
				readerErr = err
				return
			}
			var config hotUpdateConfig
			if err := json.Unmarshal(raw, &config); err != nil || config.ModelConfig.ModelPath == "" {
				readerErr = errors.Join(errors.New("partial file: "+string(raw)), err)
				return
			}
			reads.Add(1)
		}
	})
	for i := 1; i <= 200; i++ {
		require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", start.Add(time.Duration(i)*time.Second)))
	}
	done.Store(true)
	wg.Wait()
	require.NoError(t, readerErr)
	require.Positive(t, reads.Load())
}

func TestRemoveHotUpdateDir(t *testing.T) {
	m, rootfs := newHotUpdateManager(t)
	require.NoError(t, m.WriteHotUpdateConfig(jobDir, "/model-hot-update/m.pb", time.Now()))
	sibling := "/var/lib/sedna/model-hot-update/default/incrementallearningjob/other"
	require.NoError(t, m.WriteHotUpdateConfig(sibling, "/model-hot-update/m.pb", time.Now()))

	require.NoError(t, m.RemoveHotUpdateDir(jobDir))
	_, err := os.Stat(filepath.Join(rootfs, jobDir))
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = os.Stat(filepath.Join(rootfs, sibling, HotUpdateConfigFile))
	require.NoError(t, err, "other jobs keep their files")

	require.NoError(t, m.RemoveHotUpdateDir(jobDir), "removing again is fine")
	require.ErrorContains(t, m.RemoveHotUpdateDir("/etc"), "is not below the hot-update root")

	fresh, _ := newHotUpdateManager(t)
	require.NoError(t, fresh.RemoveHotUpdateDir(jobDir), "no hot-update root yet")
}
