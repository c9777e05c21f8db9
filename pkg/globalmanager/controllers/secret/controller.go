package secret

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// Name is the feature's name in the registry.
const Name = "Secret"

// Annotations of a Secret that LCs need (upstream's S3 convention); others stay in the cluster.
var forwardedAnnotations = []string{"s3-endpoint", "s3-usehttps"}

// Content is what an LC receives for a Secret.
type Content struct {
	Annotations map[string]string `json:"annotations,omitempty"`
	Data        map[string][]byte `json:"data,omitempty"`
}

// Controller publishes bound Secrets.
type Controller struct {
	client     kubernetes.Interface
	queue      workqueue.TypedRateLimitingInterface[string]
	downstream runtime.Downstream
	secrets    *runtime.Bindings
	metrics    *runtime.SyncMetrics
	resync     time.Duration
}

var _ runtime.FeatureController = (*Controller)(nil)

// New builds the controller.
func New(deps runtime.Dependencies) (runtime.FeatureController, error) {
	c := &Controller{
		client: deps.KubeClient, queue: runtime.NewQueue(Name), downstream: deps.Downstream,
		secrets: deps.Secrets, metrics: runtime.NewSyncMetrics(deps.Metrics, "secret"), resync: 5 * time.Minute,
	}
	deps.Secrets.OnChange(func(target channel.Key) {
		if target.Kind == runtime.SecretKind {
			c.queue.Add(target.Namespace + "/" + target.Name)
		}
	})
	return c, nil
}

// Run implements runtime.FeatureController.
func (c *Controller) Run(ctx context.Context, workers int) {
	runtime.RunWorkers(ctx, Name, c.queue, workers, c.metrics, c.sync)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	channelKey := runtime.Key(runtime.SecretKind, namespace, name)
	nodes := c.secrets.Nodes(channelKey)
	if len(nodes) == 0 {
		c.downstream.Unpublish(channelKey)
		return nil
	}
	secret, err := c.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Not created yet, or deleted: the LCs lose it and look again at the next resync.
		c.downstream.Unpublish(channelKey)
		c.queue.AddAfter(key, c.resync)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting secret %s: %w", key, err)
	}
	content := Content{Annotations: map[string]string{}, Data: secret.Data}
	for _, a := range forwardedAnnotations {
		if v, ok := secret.Annotations[a]; ok {
			content.Annotations[a] = v
		}
	}
	data, err := json.Marshal(content)
	if err != nil {
		return fmt.Errorf("encoding secret %s: %w", key, err)
	}
	version, err := runtime.Version(secret.ResourceVersion)
	if err != nil {
		return err
	}
	c.downstream.Publish(channelKey, version, data, nodes...)
	c.queue.AddAfter(key, c.resync)
	return nil
}
