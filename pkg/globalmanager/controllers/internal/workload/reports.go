package workload

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/internal/workerreports"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// ReportKinds implements runtime.ReportReceiver: the kind's reports when it takes them, none
// otherwise (the manager then routes none here).
func (c *Controller[T]) ReportKinds() []string {
	if !c.kind.TakesReports {
		return nil
	}
	return []string{c.channelKind}
}

// HandleReport keeps a worker's ownerInfo, which becomes the object's status metrics at the next
// sync: only from a pod of the object on node, within workerreports' bounds.
func (c *Controller[T]) HandleReport(ctx context.Context, node string, key channel.Key, content []byte) error {
	r, err := workerreports.Decode(content, c.kind.Description)
	if err != nil {
		return err
	}
	obj, err := c.lister.Get(key.Namespace, key.Name)
	if err != nil {
		return fmt.Errorf("%s %s/%s is not known to GM: %w", c.kind.Description, key.Namespace, key.Name, err)
	}
	nsName := key.Namespace + "/" + key.Name
	if c.reports.Record(ctx, c.pods, c.recorder, workerreports.Object{
		Key: nsName, UID: obj.GetUID(), Event: obj, Selector: workers.OwnerSelector(c.owner(obj)),
	}, node, r) {
		runtime.EnqueueReport(c.queue, nsName)
	}
	return nil
}

func (c *Controller[T]) forgetReports(key string) {
	c.reports.Forget(key)
}

// reportedMetrics are, per key, the value of the latest report that has it, over the workers
// whose pods still exist; sorted by key; nil when none reported.
func (c *Controller[T]) reportedMetrics(key string, uid types.UID, pods []*corev1.Pod) []sednav1.Metric {
	return workerreports.Metrics(workerreports.Latest(c.reports.Workers(key, uid, pods), nil))
}
