// Package dataset is the GM controller of Datasets: it sends each Dataset (and the Secret its
// credentialName names) to the LC of spec.nodeName, and turns that LC's reports — the number of
// samples, or why the index file could not be read — into status.
//
// It owns Dataset status; it creates no other objects.
package dataset
