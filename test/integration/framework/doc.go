// Package framework starts a real control plane (etcd and kube-apiserver, via controller-runtime's
// envtest) for integration tests, installs Sedna's CRDs with kubectl exactly as a user would, and
// offers kubectl and clients bound to it.
//
// The binaries come from _output/bin (or KUBEBUILDER_ASSETS), where hack/install-test-binaries.sh
// puts them; the framework never downloads anything.
package framework
