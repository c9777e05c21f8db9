package kubeedge

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"sigs.k8s.io/yaml"
)

// defaultConfig is what `binary --defaultconfig` prints (KubeEdge's complete default
// configuration), as a generic document: the harness sets only the fields it must, and every
// other field keeps the release's default.
func defaultConfig(ctx context.Context, binary string) (map[string]any, error) {
	out, err := exec.CommandContext(ctx, binary, "--defaultconfig").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --defaultconfig: %w", binary, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s --defaultconfig: %w", binary, err)
	}
	return doc, nil
}

// set assigns value at a dotted path of doc. Every map on the way must exist already, so a typo
// or a field a release renamed fails loudly instead of being ignored by KubeEdge.
func set(doc map[string]any, path string, value any) error {
	keys := strings.Split(path, ".")
	m := doc
	for i, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return fmt.Errorf("configuration has no section %s", strings.Join(keys[:i+1], "."))
		}
		m = next
	}
	last := keys[len(keys)-1]
	if _, ok := m[last]; !ok {
		// Fields the default leaves out (omitempty) are allowed only where they are known to be
		// optional settings; the caller passes those with setOptional.
		return fmt.Errorf("configuration has no field %s", path)
	}
	m[last] = value
	return nil
}

// setOptional assigns value at path, creating the last key (its section must exist).
func setOptional(doc map[string]any, path string, value any) error {
	keys := strings.Split(path, ".")
	parent := strings.Join(keys[:len(keys)-1], ".")
	m := doc
	for i, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return fmt.Errorf("configuration has no section %s (for %s)", strings.Join(keys[:i+1], "."), parent)
		}
		m = next
	}
	m[keys[len(keys)-1]] = value
	return nil
}

// setting is one assignment; optional ones may create their last key.
type setting struct {
	path     string
	value    any
	optional bool
}

// settings is a list of assignments applied in order.
type settings []setting

func (s *settings) add(path string, value any) { *s = append(*s, setting{path: path, value: value}) }

func (s *settings) addOptional(path string, value any) {
	*s = append(*s, setting{path: path, value: value, optional: true})
}

func (s settings) apply(doc map[string]any) error {
	for _, a := range s {
		f := set
		if a.optional {
			f = setOptional
		}
		if err := f(doc, a.path, a.value); err != nil {
			return err
		}
	}
	return nil
}

func writeConfig(path string, doc map[string]any) error {
	data, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
