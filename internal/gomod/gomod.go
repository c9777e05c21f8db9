// Package gomod finds a module's files through the go command.
package gomod

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Dir is the directory of module (a path, or path@version) in the module cache, as the go
// command resolves it from the module whose directory is workDir ("" for the current one).
// It runs `go mod download -json`, which fetches the module when the cache does not hold it yet:
// `go list -m` would name no directory on a fresh machine, or where a cached binary meant that
// nothing ever built from the module.
func Dir(workDir, module string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Dir = workDir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("`go mod download -json %s`: %w: %s", module, err, strings.TrimSpace(stdout.String()+" "+stderr.String()))
	}
	var downloaded struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &downloaded); err != nil {
		return "", fmt.Errorf("reading `go mod download -json %s`: %w", module, err)
	}
	if downloaded.Error != "" || downloaded.Dir == "" {
		return "", fmt.Errorf("downloading the module %s failed: %s", module, downloaded.Error)
	}
	return downloaded.Dir, nil
}
