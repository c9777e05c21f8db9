package incrementallearning

import (
	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/channel"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// publish sends the job, with its status (the stage, state and round the LC waits for), to the
// LC of its Dataset's node, and binds there what that LC reads: the initial, deploy and initial
// eval Models and the job's credential Secret. The Dataset itself is already sent to its own
// node by the Dataset feature. node "" (no Dataset yet) withdraws the job from every node.
//
// With hot update, the copy sent names the host path of model_config.json in the annotation the
// LC reads; the annotation is never written to the API server.
func (c *Controller) publish(job *sednav1.IncrementalLearningJob, node string) error {
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
	if copied.Spec.DeploySpec.Model.HotUpdateEnabled {
		annotations := map[string]string{}
		for k, v := range copied.Annotations {
			annotations[k] = v
		}
		annotations[HotUpdateAnnotation] = hotUpdateHostDir(job) + hotUpdateConfig
		copied.Annotations = annotations
	}
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, KindName)
	if err != nil {
		return err
	}
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
