package main

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// entry is one line of the image table: a container image name (no tag) and the binary it runs.
type entry struct {
	Image  string
	Binary string
}

// readTable reads hack/local-up/images.txt, the one list of image names: the manifests and
// examples reference them, local Sedna's process nodes map them to binaries, and `make images`
// builds one image per line. Blank lines and # comments are skipped.
func readTable(file string) ([]entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening the image table: %w", err)
	}
	defer func() { _ = f.Close() }()
	var out []entry
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want \"image binary\", got %q", file, n, line)
		}
		if seen[fields[0]] {
			return nil, fmt.Errorf("%s:%d: image %s listed twice", file, n, fields[0])
		}
		seen[fields[0]] = true
		out = append(out, entry{Image: fields[0], Binary: fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", file, err)
	}
	return out, nil
}

// selectEntries keeps the entries whose image or binary is in only (all when only is empty), and
// fails on a name that matches nothing.
func selectEntries(all []entry, only []string) ([]entry, error) {
	if len(only) == 0 {
		return all, nil
	}
	var out []entry
	for _, o := range only {
		found := false
		for _, e := range all {
			if e.Image == o || e.Binary == o || path.Base(e.Image) == o {
				out = append(out, e)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("image %q is not in the image table", o)
		}
	}
	return out, nil
}

// packageOf finds the main package of a binary: cmd/<binary> or examples/<feature>/<example>/cmd/<binary>.
func packageOf(root, binary string) (string, error) {
	candidates := []string{filepath.Join(root, "cmd", binary)}
	more, err := filepath.Glob(filepath.Join(root, "examples", "*", "*", "cmd", binary))
	if err != nil {
		return "", err
	}
	candidates = append(candidates, more...)
	var found []string
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && st.IsDir() {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no main package for %s under cmd/ or examples/*/*/cmd/", binary)
	case 1:
		rel, err := filepath.Rel(root, found[0])
		if err != nil {
			return "", err
		}
		return "./" + filepath.ToSlash(rel), nil
	default:
		return "", fmt.Errorf("binary %s is ambiguous: %v", binary, found)
	}
}

// reference is the name an image is stored and pushed under: repo/<last element of the table's
// name>:tag when repo is set, else the table's name with the tag.
func reference(image, repo, tag string) string {
	if repo != "" {
		image = strings.TrimSuffix(repo, "/") + "/" + path.Base(image)
	}
	return image + ":" + tag
}
