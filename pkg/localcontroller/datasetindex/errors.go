package datasetindex

import "errors"

// Sentinel errors. Every error this package returns wraps at most one of them and names the path,
// line or limit concerned, so callers branch with errors.Is and log the message as it is.
var (
	// ErrOutsideRoots: a host path that is relative, contains "..", lies outside the allowed data
	// roots, or reaches outside them through a symlink; also a resolved path that contains a
	// symlink when it is opened (it changed since it was resolved).
	ErrOutsideRoots = errors.New("outside the allowed data roots")
	// ErrNotFound: the index file, or a directory on its path, does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge: the index file is larger than Options.MaxFileSize, or one of its lines is
	// longer than Options.MaxLineLength.
	ErrTooLarge = errors.New("too large")
	// ErrBinary: the index file is not text: a line contains a NUL byte or invalid UTF-8.
	ErrBinary = errors.New("binary content in index file")
	// ErrUnsupportedFormat: a Dataset format other than txt or csv.
	ErrUnsupportedFormat = errors.New("unsupported index format")
)
