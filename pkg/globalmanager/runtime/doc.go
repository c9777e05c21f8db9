// Package runtime holds what every GM feature controller shares: the dependencies a controller
// is built from, the interfaces the controller manager drives, the reference bindings that decide
// which node receives a shared Model or Secret, and small helpers for keys and versions.
//
// It owns no Kubernetes objects itself.
package runtime
