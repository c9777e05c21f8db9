package storage

import "errors"

// Sentinels callers branch on with errors.Is. The wrapped error keeps the server's or the
// filesystem's own message, and the URL, bucket and endpoint involved.
var (
	// ErrNotFound: the object, prefix, bucket or host path does not exist. Managers treat it as
	// "not there yet" (a dataset not yet written, a model not yet trained) rather than as a fault.
	ErrNotFound = errors.New("not found")
	// ErrAccessDenied: the S3 server refused the credentials or the operation. Retrying with the
	// same credentials will not help, so managers report it instead of looping.
	ErrAccessDenied = errors.New("access denied")
	// ErrTooLarge: ReadFile refused a file above its size limit.
	ErrTooLarge = errors.New("file too large")
	// ErrNoCredentials: an s3:// URL was used with a Client built without credentials, i.e. the
	// resource names no credentialName.
	ErrNoCredentials = errors.New("no S3 credentials")
)
