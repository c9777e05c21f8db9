package main

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
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

// imageRef matches an image reference in a manifest.
var imageRef = regexp.MustCompile(`(?m)^[ \t]*-?[ \t]*image:[ \t]*["']?([^\s"'#]+)`)

// exampleTags reads the tags the example manifests (examples/**/*.yaml) give their images: an
// example image is built and pushed with that tag, whatever IMAGE_TAG says, so that what `make
// images` produces is what the examples reference. An image the examples give two tags is an error.
func exampleTags(root string) (map[string]string, error) {
	tags := map[string]string{}
	where := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, "examples"), func(file string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(file, ".yaml") && !strings.HasSuffix(file, ".yml")) {
			return err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		for _, m := range imageRef.FindAllStringSubmatch(string(data), -1) {
			image, tag := splitTag(m[1])
			if tag == "" {
				continue
			}
			if old, ok := tags[image]; ok && old != tag {
				return fmt.Errorf("image %s has tag %s in %s and %s in %s", image, old, where[image], tag, file)
			}
			tags[image], where[image] = tag, file
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the examples' image tags: %w", err)
	}
	return tags, nil
}

// splitTag splits "name:tag" (the tag after the last / only, so a registry port is no tag).
func splitTag(ref string) (image, tag string) {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, ""
}

// tagOf is the tag an entry is built with: the examples' tag for an example image, else tag.
func tagOf(e string, tags map[string]string, tag string) string {
	if t, ok := tags[e]; ok {
		return t
	}
	return tag
}
