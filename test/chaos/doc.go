// Package chaos is Sedna's fault campaign: on a running local Sedna (test/localsedna) it runs
// the joint inference MNIST example under load, a test worker per edge node sending its LC
// reports that each carry a unique ID (chaos-reporter), and, optionally, the incremental learning
// example fed batch after batch, the federated learning example (three edge nodes' trainers,
// one job after another) and the lifelong learning example (new tasks streamed to it as it
// learns the last, its models in the knowledge base); it injects faults chosen at random from a
// printed seed — SIGKILL of an LC, of the leading GM (a standby takes over when one runs), of a
// worker, of the federated learning aggregator, of the knowledge base;
// restarts of kube-apiserver and etcd; cuts of the edge's link to the cloud of 1 s to 2 min (as
// root: an edge node's own veth taken down, the node being in a network namespace of its own,
// test/netns, also right at a stage transition of the incremental learning job and while a
// federated learning round is open; otherwise a
// relay between the LCs and GM); as root, ENOSPC on an LC's store (a tmpfs filled for 1 s to
// 30 s) — then heals everything and checks the invariants, counting what broke: every
// inference the edge answered is counted exactly once in the service's status, every report an
// LC accepted is recorded by GM exactly once (by ID, from GM's log), a full store refuses
// reports, no child object is ever duplicated (watched per worker during the whole campaign),
// the service is Ready again, the incremental learning job ends a round or says why, every
// federated learning job ends (Succeeded with its accuracy, or a Failed condition saying why), the
// lifelong learning job learns every task it was given or says why, its status.knowledgeBase lists
// what the knowledge base holds, and the knowledge base still holds, with the same model bytes,
// every task it ever listed, the LCs
// restarted only when killed (their store opened after every fault), a copy of each LC's store
// truncated mid-record opens, and status converges within a bound after the last fault heals.
//
// `make chaos` runs the full campaign (test/chaos/chaos_test.go, build tag chaos; CHAOS_SEED,
// CHAOS_DURATION, CHAOS_FAULTS); test/e2e runs a short one with a fixed seed. Results are in
// docs/reliability.md.
package chaos
