// Package model is the GM controller of Models: it sends each Model (and the Secret its
// credentialName names) to every node that runs a worker using it — the features record those
// nodes in runtime.Dependencies.Models — and applies reported metrics to status.
//
// It owns Model status; it creates no other objects.
package model
