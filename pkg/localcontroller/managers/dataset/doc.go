// Package dataset is sedna-lc's dataset manager: for every Dataset GM binds to this node it runs a
// monitor that counts the samples of the dataset's index file every period (60 s by default) and
// reports the count to GM as {"numberOfSamples":N} whenever it differs from what GM last heard,
// the first count included (so an empty dataset is reported too, unlike upstream).
//
// A monitor resolves spec.url again before every count (the Resolver of package datasetindex
// confines host paths to the configured data roots; a resolved path is never reused, because the
// file or a symlink on its way may change between counts) and counts incrementally with a
// datasetindex.Counter. s3:// URLs are read with package storage using the credentials of the
// Secret named by spec.credentialName, which GM sends as a resource of kind "secret"; the whole
// object, up to a size limit, is counted every period.
//
// When the index cannot be counted the monitor reports the last count with a condition
// {"reason":R,"message":M}, R one of the Reason constants, once per distinct problem rather than
// every period; the next successful count is reported without a condition, which clears it.
//
// What was reported and the counter's state are kept in the store's state namespace "dataset",
// written only after the report was queued, so after an LC restart a monitor continues where it
// stopped: it neither re-reads a large file from the start nor re-reports a count GM already has.
//
// The package owns the monitors and their state records. It does not write the Dataset's status
// (GM does, from the reports), deliver reports (the Reporter does) or write any file.
package dataset
