package runtime

import (
	"context"

	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"

	"github.com/sedna-go/sedna/pkg/channel"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	sednainformers "github.com/sedna-go/sedna/pkg/client/informers/externalversions"
)

// FeatureController is one feature of the GM (Dataset, Model, JointInference, ...).
type FeatureController interface {
	// Run processes the feature's queue with the given number of workers until ctx ends. The
	// informers have been started and synced before Run is called.
	Run(ctx context.Context, workers int)
}

// ReportReceiver is implemented by features that take LC reports.
type ReportReceiver interface {
	// ReportKinds are the lower-case channel kinds whose reports the feature takes.
	ReportKinds() []string
	// HandleReport records a report and enqueues the resource; it must not block or call the API.
	HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error
}

// DownstreamPrimer is implemented by features that publish to LCs. PrimeDownstream publishes the
// desired state of every existing object from the listers, so that the first LC snapshot after a
// GM start is complete; the manager calls it after the caches sync and before LCs are served.
type DownstreamPrimer interface {
	PrimeDownstream(ctx context.Context) error
}

// Downstream is the GM→LC side of the channel as controllers see it.
type Downstream interface {
	// Publish makes object the desired state of key on exactly nodes; Publish owns object.
	Publish(key channel.Key, version uint64, object []byte, nodes ...string)
	// Unpublish removes key from every node.
	Unpublish(key channel.Key)
}

// NodeCopiesDownstream is a Downstream that can also send each node its own copy of a resource,
// as a job whose workers run on several nodes needs: each node's copy names that node's workers
// (workerauth.WorkersAnnotation). GM's hub implements it.
type NodeCopiesDownstream interface {
	Downstream
	// PublishEach makes objects[node] the desired state of key on exactly the nodes of objects.
	PublishEach(key channel.Key, version uint64, objects map[string][]byte)
}

// Dependencies are what a feature controller is built from.
type Dependencies struct {
	KubeClient     kubernetes.Interface
	SednaClient    sednaclientset.Interface
	KubeInformers  informers.SharedInformerFactory
	SednaInformers sednainformers.SharedInformerFactory
	Downstream     Downstream
	Recorder       record.EventRecorder
	// Models and Secrets record which nodes need a shared Model or Secret; features bind them,
	// the Model controller and the secret distributor publish them.
	Models  *Bindings
	Secrets *Bindings
	// LCServer is the URL workers use to reach their node's LC.
	LCServer string
	// KBServer is the knowledge base URL given to lifelong-learning workers.
	KBServer string
	// KBTokenSecret names the Secret (key "token", in the job's namespace) of the KB's bearer
	// token given to lifelong-learning workers as SEDNA_KB_TOKEN; "" gives none.
	KBTokenSecret string
	// Metrics is where controllers register their metrics; nil registers nothing.
	Metrics prometheus.Registerer

	// WorkerTokenInformers caches only the worker-token Secrets (NewWorkerTokenInformers).
	WorkerTokenInformers informers.SharedInformerFactory
	// ChildInformers caches, per owner kind, only the objects labeled as that kind's children;
	// features take their children's informers from ChildInformerFactory. Nil falls back to
	// KubeInformers.
	ChildInformers *ChildInformers
	// NodeChannel tells whether a node's LC is connected, and since when; nil means unknown
	// (every node counts as connected since ever).
	NodeChannel NodeChannel
}

// NodeChannel is the state of the GM↔LC channel per node, as controllers that must tell "the
// edge is offline" from "the edge is silent" need it (contract C3).
type NodeChannel interface {
	// ConnectedSince returns when node's current connection was established, and false when its
	// LC is not connected.
	ConnectedSince(node string) (time.Time, bool)
	// OnChange registers fn, called (outside any lock, without blocking) with the node whose LC
	// connected or disconnected. Register before use.
	OnChange(fn func(node string))
}

// ChannelKey identifies a resource on the GM↔LC channel.
type ChannelKey = channel.Key

// SecretKind is the channel kind of the Secrets GM sends to the nodes that need them.
const SecretKind = "secret"

// Version parses a resourceVersion as the channel's version number. Kubernetes calls
// resourceVersions opaque, but they are etcd revisions: integers that grow with every write,
// which is what the channel's per-resource ordering needs.
func Version(resourceVersion string) (uint64, error) {
	v, err := strconv.ParseUint(resourceVersion, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("resourceVersion %q is not a number: %w", resourceVersion, err)
	}
	return v, nil
}

// Key builds the channel key of an object of kind (any case) in namespace.
func Key(kind, namespace, name string) channel.Key {
	return channel.Key{Kind: strings.ToLower(kind), Namespace: namespace, Name: name}
}
