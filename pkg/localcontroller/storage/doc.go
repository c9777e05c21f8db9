// Package storage moves datasets and models for the local controller (sedna-lc): it reads dataset
// index files, downloads model files and prefixes, uploads training outputs and copies trained
// models onto deploy URLs, on host paths and on S3.
//
// It owns three things: the meaning of a Sedna storage URL (ParseURL: "s3://bucket/key" or an
// absolute host path; a trailing "/" names a tree), the decoding of the S3 credentials GM forwards
// from the Secret named by credentialName (CredentialsFromSecret), and the transfers themselves
// (Client). Host paths are always resolved under the rootfs prefix the LC was given (the node's
// "/" is mounted at /rootfs in the DaemonSet), never against the LC container's own filesystem;
// only the explicit localPath arguments of Download and Upload name paths in the LC's own
// filesystem.
//
// Local writes are atomic per file (temporary file in the target directory, fsync, rename), so a
// worker or a dataset monitor never reads a half-written model or index file. A tree transfer is
// atomic per file, not as a whole.
//
// The package does not know about Sedna's resources, the local store or the GM channel, and it
// keeps no state beyond one S3 connection pool per Client: callers decide what to copy and when.
package storage
