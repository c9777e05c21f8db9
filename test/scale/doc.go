// Package scale measures GM against a real control plane (etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler started by test/localcluster) at sizes no unit or
// integration test reaches. Its tests carry the build tag "scale", so `make test` never runs them;
// `make scale` does and prints the tables docs/performance.md records.
//
// The control plane runs without the Deployment controller: no ReplicaSets or pods load the two
// cores while a writer is measured.
//
// Convergence: N JointInferenceServices (and the two Models they use) are created, and the time
// until every child (two Deployments and one Service per service) exists is measured with a real
// sedna-gm running in the test process. In the same run, with GM stopped, a bare client-go writer
// (16 workers, no client-side rate limit) creates the same children in another namespace: the
// ratio bare/GM is the figure.
package scale
