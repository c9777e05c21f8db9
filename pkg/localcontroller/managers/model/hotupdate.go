package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/sedna-go/sedna/pkg/localcontroller/hostfs"
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
	err = hostfs.WriteFileAtomic(dir, HotUpdateConfigFile, hotUpdateFileMode, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing the hot-update config in %s: %w", hostDir, err)
	}
	return nil
}

// OpenHotUpdateDir creates (if missing) and opens the host directory hostDir, which must lie
// strictly below the hot-update root, for the caller to put a model there. Everything below it
// is reached through package hostfs, so no symlink leads out of it.
func (m *Manager) OpenHotUpdateDir(hostDir string) (*hostfs.Root, error) {
	rel, err := m.hotUpdateRelative(hostDir)
	if err != nil {
		return nil, fmt.Errorf("opening the hot-update directory: %w", err)
	}
	dir, err := m.openHotUpdateDir(rel)
	if err != nil {
		return nil, fmt.Errorf("opening the hot-update directory %s: %w", hostDir, err)
	}
	return dir, nil
}

// RemoveHotUpdateDir removes the host directory hostDir and what it holds, for a job that was
// deleted. A missing directory is not an error.
func (m *Manager) RemoveHotUpdateDir(hostDir string) error {
	rel, err := m.hotUpdateRelative(hostDir)
	if err != nil {
		return fmt.Errorf("removing the hot-update directory: %w", err)
	}
	root, err := hostfs.OpenRoot(filepath.Join(m.rootfs, m.hotUpdateRoot))
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

// openHotUpdateDir creates and opens rel below the hot-update root, through package hostfs: a
// symlink planted in a worker's directory (even one swapped in while the directories are
// created) cannot redirect the write elsewhere on the node.
func (m *Manager) openHotUpdateDir(rel string) (*hostfs.Root, error) {
	rootDir := filepath.Join(m.rootfs, m.hotUpdateRoot)
	// The root itself is the operator's directory, trusted like the rootfs mount.
	if err := os.MkdirAll(rootDir, hotUpdateDirMode); err != nil {
		return nil, fmt.Errorf("creating the hot-update root: %w", err)
	}
	root, err := hostfs.OpenRoot(rootDir)
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
