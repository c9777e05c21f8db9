package workers

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
)

// Scope is what a resource itself declares its workers may be given: the URLs it names (a
// Dataset's index, a Model) and the trees below which others may lie (an output directory, the
// directory of a dataset index). Locations that reach GM from an LC or a worker (the stage input
// of an incremental learning round) are checked against it before they become a mount, a download
// or an env value: anything on the node's network can forge such a report, and GM creates pods
// with host-path mounts.
type Scope struct {
	exact []string
	trees []scopeRoot
}

type scopeRoot struct {
	raw string
	loc location
}

// location is a URL split into what containment compares: scheme and host ("" for host paths)
// and a clean absolute path.
type location struct {
	scheme, host, path string
}

// Declare adds a URL the resource names: it may be given as it is.
func (s *Scope) Declare(urls ...string) {
	for _, u := range urls {
		if u != "" {
			s.exact = append(s.exact, u)
		}
	}
}

// DeclareTree adds a directory (host path or URL) below which locations may lie. A root that is
// not a clean path or URL is ignored: nothing can lie below it.
func (s *Scope) DeclareTree(roots ...string) {
	for _, raw := range roots {
		if raw == "" {
			continue
		}
		loc, err := parseLocation(raw)
		if err != nil {
			continue
		}
		s.trees = append(s.trees, scopeRoot{raw: raw, loc: loc})
	}
}

// DeclareTreeOf adds the directory of a file URL (a dataset index) as a tree.
func (s *Scope) DeclareTreeOf(fileURLs ...string) {
	for _, raw := range fileURLs {
		loc, err := parseLocation(raw)
		if err != nil || raw == "" {
			continue
		}
		loc.path = path.Dir(loc.path)
		s.trees = append(s.trees, scopeRoot{raw: raw, loc: loc})
	}
}

// Check returns nil when raw may be given to a worker: it is one of the declared URLs, or it is a
// clean host path or s3/http(s) URL whose effective location lies within a declared tree of the
// same scheme and host (bucket). For a host path the effective location is the directory that is
// mounted (its parent, or itself with a trailing "/"), so a path equal to a tree's root, whose
// parent would be mounted, is refused. Relative paths, other schemes, "..", "." and "//"
// elements, queries, fragments and user info are refused.
func (s *Scope) Check(raw string) error {
	if slices.Contains(s.exact, raw) {
		return nil
	}
	loc, err := parseLocation(raw)
	if err != nil {
		return err
	}
	effective := loc.path
	if loc.scheme == "" && !strings.HasSuffix(raw, "/") {
		effective = path.Dir(loc.path) // the mounted directory
	}
	for _, root := range s.trees {
		if root.loc.scheme == loc.scheme && root.loc.host == loc.host && within(effective, root.loc.path) {
			return nil
		}
	}
	return fmt.Errorf("%q lies outside what the resource declares (its output directory, dataset and models)", raw)
}

// parseLocation splits a host path or an s3/http(s) URL, refusing anything that is not clean.
func parseLocation(raw string) (location, error) {
	if strings.HasPrefix(raw, "/") {
		if err := cleanPath(raw); err != nil {
			return location{}, fmt.Errorf("host path %q: %w", raw, err)
		}
		return location{path: path.Clean(raw)}, nil
	}
	if !strings.Contains(raw, "://") {
		return location{}, fmt.Errorf("%q is neither an absolute host path nor an s3 or http(s) URL", raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return location{}, fmt.Errorf("parsing URL %q: %w", raw, err)
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "s3", "http", "https":
	default:
		return location{}, fmt.Errorf("URL %q: scheme %q is not s3, http or https", raw, u.Scheme)
	}
	if u.Host == "" {
		return location{}, fmt.Errorf("URL %q has no host or bucket", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return location{}, fmt.Errorf("URL %q must not carry user info, a query or a fragment", raw)
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if u.RawPath != "" {
		return location{}, fmt.Errorf("URL %q must not carry escaped path characters", raw)
	}
	if err := cleanPath(p); err != nil {
		return location{}, fmt.Errorf("URL %q: %w", raw, err)
	}
	return location{scheme: scheme, host: strings.ToLower(u.Host), path: path.Clean(p)}, nil
}

// cleanPath refuses paths with "..", "." or empty elements; one trailing "/" (a directory) is fine.
func cleanPath(p string) error {
	trimmed := strings.TrimSuffix(p, "/")
	if trimmed == "" {
		return nil // "/"
	}
	for _, element := range strings.Split(trimmed, "/")[1:] {
		switch element {
		case "..":
			return fmt.Errorf("path %q contains \"..\"", p)
		case ".", "":
			return fmt.Errorf("path %q is not clean", p)
		}
	}
	return nil
}

// within reports whether p equals root or lies below it; both are clean absolute paths.
func within(p, root string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}
