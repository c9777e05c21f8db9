package incrementallearning

import (
	"fmt"

	"k8s.io/apimachinery/pkg/labels"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
	"github.com/sedna-go/sedna/pkg/globalmanager/workers"
)

// publish sends the job, with its status (the stage, state and round the LC waits for), to the
// LC of its Dataset's node, and binds there what that LC reads: the initial, deploy and initial
// eval Models and the job's credential Secret. The Dataset itself is already sent to its own
// node by the Dataset feature. node "" (no Dataset yet) withdraws the job from every node.
//
// With hot update, the copy sent names the host path of model_config.json in the annotation the
// LC reads. The copy also carries the SHA-256 of the job's worker token (token "" sends none) and
// the job's workers on that node with their pod IPs (contract C1), and its version is raised to
// the newest of those pods' resourceVersions so that a pod change reaches the LC. These
// annotations are never written to the API server.
func (c *Controller) publish(job *sednav1.IncrementalLearningJob, node, token string) error {
	key := runtime.Key(Kind, job.Namespace, job.Name)
	models := []channel.Key{
		runtime.Key("model", job.Namespace, job.Spec.InitialModel.Name),
		runtime.Key("model", job.Namespace, job.Spec.DeploySpec.Model.Name),
	}
	if ref := job.Spec.EvalSpec.InitialEvalModel; ref != nil && ref.Name != "" {
		models = append(models, runtime.Key("model", job.Namespace, ref.Name))
	}
	var secrets []channel.Key
	if job.Spec.CredentialName != "" {
		secrets = append(secrets, runtime.Key(runtime.SecretKind, job.Namespace, job.Spec.CredentialName))
	}
	c.models.Set(key, models, []string{node})
	c.secrets.Set(key, secrets, []string{node})

	copied := job.DeepCopy()
	pods, err := c.pods.Pods(job.Namespace).List(labels.SelectorFromSet(workers.OwnerSelector(ownerOf(job))))
	if err != nil {
		return fmt.Errorf("listing the pods of incremental learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	nodeWorkers, podsVersion := runtime.NodeWorkers(pods, node, workerTypeLabel)
	annotations, err := runtime.WorkerAuth{Token: token, Workers: nodeWorkers}.Annotate(copied.Annotations)
	if err != nil {
		return fmt.Errorf("publishing incremental learning job %s/%s: %w", job.Namespace, job.Name, err)
	}
	if copied.Spec.DeploySpec.Model.HotUpdateEnabled {
		annotations[HotUpdateAnnotation] = hotUpdateHostDir(job) + hotUpdateConfig
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
	c.models.Set(key, nil, nil)
	c.secrets.Set(key, nil, nil)
	c.downstream.Unpublish(key)
}
