package lifelonglearning

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// publish sends the job, with its status (the stage, state and round the LC waits for), to the
// LC of its Dataset's node, and binds there the job's credential Secret. node "" (no Dataset yet)
// withdraws the job from every node. The copy carries the SHA-256 of the job's worker token and
// the job's workers on that node with their pod IPs (contract C1); its version is raised to the
// newest of those pods' resourceVersions so that a pod change reaches the LC.
func (c *Controller) publish(job *sednav1.LifelongLearningJob, node, token string) error {
	key := runtime.Key(Kind, job.Namespace, job.Name)
	var secrets []channel.Key
	if job.Spec.CredentialName != "" {
		secrets = append(secrets, runtime.Key(runtime.SecretKind, job.Namespace, job.Spec.CredentialName))
	}
	c.secrets.Set(key, secrets, []string{node})

	copied := job.DeepCopy()
	pods, err := c.pods.Pods(job.Namespace).List(labels.SelectorFromSet(workers.OwnerSelector(ownerOf(job))))
	if err != nil {
		return fmt.Errorf("listing the pods of lifelong learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	nodeWorkers, podsVersion := runtime.NodeWorkers(pods, node, workerTypeLabel)
	annotations, err := runtime.WorkerAuth{Token: token, Workers: nodeWorkers}.Annotate(copied.Annotations)
	if err != nil {
		return fmt.Errorf("publishing lifelong learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	copied.Annotations = annotations
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, KindName)
	if err != nil {
		return err
	}
	version = max(version, podsVersion)
	if node == "" {
		c.downstream.Publish(key, version, data)
		return nil
	}
	c.downstream.Publish(key, version, data, node)
	return nil
}

// unpublish withdraws a deleted job and its bindings.
func (c *Controller) unpublish(namespace, name string) {
	key := runtime.Key(Kind, namespace, name)
	c.secrets.Set(key, nil, nil)
	c.downstream.Unpublish(key)
}
