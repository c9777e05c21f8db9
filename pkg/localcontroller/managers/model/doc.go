// Package model is sedna-lc's model manager. It answers which Model a learning job on this node
// refers to (Lookup: url, format, device_soc_versions of a Model GM bound to the node) and writes
// the hot-update file that upstream's inference workers poll to load a new model without a
// restart (WriteHotUpdateConfig).
//
// The Models themselves live in the local store, written by the GM client; the manager reads them
// from there, so a Lookup is right even before the manager was told about a Model (after a
// restart, before the replay) and never outlives a delete. It only caches the parsed object per
// stored version.
//
// The hot-update file is model_config.json in a directory under the hot-update root on the host
// (by default /var/lib/sedna/model-hot-update/<namespace>/<kind>/<name>/, which GM mounts into
// the inference pod at /model-hot-update): {"model_config":{"model_path":P,"model_update_time":T}}.
// The worker library loads P whenever T differs from the time it last loaded, so the file is
// replaced atomically (temporary file, fsync, rename) and a worker never reads half of it. Every
// file below the hot-update root is reached through package hostfs, so a symlink planted by a
// worker (which can write its hot-update directory) is refused, not followed.
//
// The package does not copy model files (package storage does), decide when to deploy (the
// incremental learning manager does) or report anything to GM.
package model
