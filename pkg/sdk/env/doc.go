// Package env owns the environment-variable contract between the global
// manager (which injects variables into worker pods) and the worker library.
// Every variable a worker reads, its upstream default, and upstream's lookup
// rule (name, then the upper-cased name; empty means unset) live here so that
// no other package calls os.Getenv.
//
// It reads only; it never sets variables or touches the filesystem.
package env
