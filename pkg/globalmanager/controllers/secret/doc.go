// Package secret distributes the Secrets named by credentialName fields to the nodes whose LCs
// need them (the features record those in runtime.Dependencies.Secrets), over the authenticated
// channel — never in annotations or status. Only the S3 annotations and the data are sent.
//
// Secrets are read with a GET when needed rather than watched, so GM does not cache every Secret
// of the cluster; a periodic resync picks up rotations.
package secret
