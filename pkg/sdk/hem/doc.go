// Package hem owns hard example mining: deciding, from an inference result,
// whether a sample is hard enough to need the cloud model (joint inference)
// or relabelling (incremental learning). Algorithms are looked up by
// upstream Sedna's names (HEM_NAME) and configured from upstream's
// string-valued parameters (HEM_PARAMETERS).
//
// The package is pure computation: no I/O, no global registry. Callers build
// a Registry, optionally add their own algorithms, and ask it for a Miner.
package hem
