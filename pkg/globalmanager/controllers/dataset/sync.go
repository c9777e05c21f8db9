package dataset

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// sync publishes the dataset to its node and applies the node's latest report to status.
func (c *Controller) sync(ctx context.Context, key string) error {
	logger := klog.FromContext(ctx).WithValues("dataset", key)
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("parsing key %q: %w", key, err)
	}
	cached, err := c.lister.Datasets(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		logger.V(4).Info("Dataset deleted; removing it from its node")
		c.unpublish(namespace, name)
		c.forgetReport(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting dataset %s: %w", key, err)
	}
	if err := c.publish(cached); err != nil {
		return err
	}
	return c.updateStatus(ctx, cached)
}
