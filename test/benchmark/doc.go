// Package benchmark holds benchmarks that run whole Sedna processes: the LC's memory footprint is
// measured on the real sedna-lc binary, connected to a GM channel, as an operator would see it.
package benchmark
