package model

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// HotUpdateConfigFile is the name of the file the worker library polls (MODEL_HOT_UPDATE_CONFIG
// is /model-hot-update/model_config.json in the worker).
const HotUpdateConfigFile = "model_config.json"

const (
	// Workers may run as any user and only need to read what the LC writes.
	hotUpdateDirMode  os.FileMode = 0o755
	hotUpdateFileMode os.FileMode = 0o644
)

// hotUpdateConfig is the document upstream's worker library reads: it loads model_path whenever
// str(model_update_time) differs from the version it loaded last.
type hotUpdateConfig struct {
	ModelConfig hotUpdateModel `json:"model_config"`
}

type hotUpdateModel struct {
	ModelPath       string `json:"model_path"`
	ModelUpdateTime string `json:"model_update_time"`
}

func checkRoots(rootfs, hotUpdateRoot string) (string, string, error) {
	if rootfs == "" {
		rootfs = "/"
	}
	if !filepath.IsAbs(rootfs) {
		return "", "", fmt.Errorf("rootfs %q is not an absolute path", rootfs)
	}
	if hotUpdateRoot == "" {
		hotUpdateRoot = DefaultHotUpdateRoot
	}
	switch {
	case !path.IsAbs(hotUpdateRoot):
		return "", "", fmt.Errorf("hot-update root %q is not an absolute host path", hotUpdateRoot)
	case path.Clean(hotUpdateRoot) != hotUpdateRoot:
		return "", "", fmt.Errorf("hot-update root %q is not clean (want %q)", hotUpdateRoot, path.Clean(hotUpdateRoot))
	case hotUpdateRoot == "/":
		return "", "", errors.New(`hot-update root "/" would let jobs have files written anywhere on the node`)
	}
	return filepath.Clean(rootfs), hotUpdateRoot, nil
}

// WriteHotUpdateConfig replaces model_config.json in the host directory hostDir (taken from the
// job's sedna.io/model-hot-update-config annotation, without the file name) so that the inference
// worker loads modelPath, a path in the worker's filesystem such as /model-hot-update/model.pb.
// updateTime versions the model: the worker reloads only when it differs from the last one, so
// pass the time the model file was put in place.
//
// hostDir must lie strictly below the hot-update root; the directory is created if missing
// (GM's hostPath volume is DirectoryOrCreate too), and no symlink may lead the write out of the
// root. Readers see the old file or the new one, never a mix.
func (m *Manager) WriteHotUpdateConfig(hostDir string, modelPath string, updateTime time.Time) error {
	if modelPath == "" {
		return fmt.Errorf("writing the hot-update config in %s: model path is empty", hostDir)
	}
	if updateTime.IsZero() {
		return fmt.Errorf("writing the hot-update config in %s: update time is zero", hostDir)
	}
	rel, err := m.hotUpdateRelative(hostDir)
	if err != nil {
		return fmt.Errorf("writing the hot-update config: %w", err)
	}
	content, err := json.MarshalIndent(hotUpdateConfig{ModelConfig: hotUpdateModel{
		ModelPath: modelPath,
		// Nanoseconds, so two updates within a second still differ for the worker.
		ModelUpdateTime: updateTime.UTC().Format(time.RFC3339Nano),
	}}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the hot-update config for %s: %w", hostDir, err)
	}
	dir, err := m.openHotUpdateDir(rel)
	if err != nil {
		return fmt.Errorf("writing the hot-update config in %s: %w", hostDir, err)
	}
	defer func() {
		_ = dir.Close() // only the directory handle; nothing buffered is lost
	}()
	if err := writeFileAtomic(dir, HotUpdateConfigFile, content); err != nil {
		return fmt.Errorf("writing the hot-update config in %s: %w", hostDir, err)
	}
	return nil
}

// RemoveHotUpdateDir removes the host directory hostDir and what it holds, for a job that was
// deleted. A missing directory is not an error.
func (m *Manager) RemoveHotUpdateDir(hostDir string) error {
	rel, err := m.hotUpdateRelative(hostDir)
	if err != nil {
		return fmt.Errorf("removing the hot-update directory: %w", err)
	}
	root, err := os.OpenRoot(filepath.Join(m.rootfs, m.hotUpdateRoot))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing the hot-update directory %s: %w", hostDir, err)
	}
	defer func() {
		_ = root.Close() // a directory handle only
	}()
	if err := root.RemoveAll(filepath.FromSlash(rel)); err != nil {
		return fmt.Errorf("removing the hot-update directory %s: %w", hostDir, err)
	}
	return nil
}

// hotUpdateRelative checks that hostDir is strictly below the hot-update root and returns its
// path relative to the root.
func (m *Manager) hotUpdateRelative(hostDir string) (string, error) {
	if strings.IndexByte(hostDir, 0) >= 0 {
		return "", fmt.Errorf("hot-update directory %q contains a NUL byte", hostDir)
	}
	if !path.IsAbs(hostDir) {
		return "", fmt.Errorf("hot-update directory %q is not an absolute host path", hostDir)
	}
	for _, element := range strings.Split(hostDir, "/") {
		if element == ".." {
			return "", fmt.Errorf("hot-update directory %q contains a \"..\" element", hostDir)
		}
	}
	rel, below := strings.CutPrefix(path.Clean(hostDir), m.hotUpdateRoot+"/")
	if !below || rel == "" {
		return "", fmt.Errorf("hot-update directory %q is not below the hot-update root %q", hostDir, m.hotUpdateRoot)
	}
	return rel, nil
}

// openHotUpdateDir creates and opens rel below the hot-update root as an os.Root. os.Root refuses symlinks that lead outside the hot-update root, so a link planted in a
// worker's directory cannot redirect the write elsewhere on the node.
func (m *Manager) openHotUpdateDir(rel string) (*os.Root, error) {
	rootDir := filepath.Join(m.rootfs, m.hotUpdateRoot)
	// The root itself is the operator's directory, trusted like the rootfs mount.
	if err := os.MkdirAll(rootDir, hotUpdateDirMode); err != nil {
		return nil, fmt.Errorf("creating the hot-update root: %w", err)
	}
	root, err := os.OpenRoot(rootDir)
	if err != nil {
		return nil, fmt.Errorf("opening the hot-update root: %w", err)
	}
	defer func() {
		_ = root.Close() // the returned Root is opened separately
	}()
	relDir := filepath.FromSlash(rel)
	if err := root.MkdirAll(relDir, hotUpdateDirMode); err != nil {
		return nil, fmt.Errorf("creating the directory: %w", err)
	}
	dir, err := root.OpenRoot(relDir)
	if err != nil {
		return nil, fmt.Errorf("opening the directory: %w", err)
	}
	return dir, nil
}

// writeFileAtomic writes name in dir so that readers only ever see the old or the complete new
// content: a temporary file in the same directory, fsync, rename, fsync of the directory so the
// rename survives a power cut.
func writeFileAtomic(dir *os.Root, name string, content []byte) (err error) {
	suffix := make([]byte, 8)
	if _, err := rand.Read(suffix); err != nil {
		return fmt.Errorf("naming a temporary file: %w", err)
	}
	tmpName := "." + name + ".tmp-" + hex.EncodeToString(suffix)
	tmp, err := dir.OpenFile(tmpName, os.O_WRONLY|os.O_CREATE|os.O_EXCL, hotUpdateFileMode)
	if err != nil {
		return fmt.Errorf("creating a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			// Best effort: the hidden, uniquely named leftover harms nothing.
			_ = tmp.Close()
			_ = dir.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("writing %s: %w", tmpName, err)
	}
	// The umask may have narrowed the mode given to OpenFile.
	if err := tmp.Chmod(hotUpdateFileMode); err != nil {
		return fmt.Errorf("setting the mode of %s: %w", tmpName, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmpName, err)
	}
	if err := dir.Rename(tmpName, name); err != nil {
		return fmt.Errorf("renaming %s to %s: %w", tmpName, name, err)
	}
	handle, err := dir.Open(".")
	if err != nil {
		return fmt.Errorf("opening the directory to sync the rename: %w", err)
	}
	syncErr := handle.Sync()
	closeErr := handle.Close()
	if err := errors.Join(syncErr, closeErr); err != nil {
		// The file is in place and complete; only its survival of a crash is in doubt.
		return fmt.Errorf("syncing the directory after renaming %s: %w", name, err)
	}
	return nil
}
