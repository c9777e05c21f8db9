// Package dashboard holds the test that keeps docs/grafana/sedna-dashboard.json honest: every
// metric its queries read is one that sedna-gm or sedna-lc defines.
package dashboard
