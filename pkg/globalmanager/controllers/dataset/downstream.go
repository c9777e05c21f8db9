package dataset

import (
	"context"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// publish sends the dataset to its node, and its Secret with it.
func (c *Controller) publish(ds *sednav1.Dataset) error {
	key := runtime.Key(Kind, ds.Namespace, ds.Name)
	var secrets []runtime.ChannelKey
	if ds.Spec.CredentialName != "" {
		secrets = append(secrets, runtime.Key(runtime.SecretKind, ds.Namespace, ds.Spec.CredentialName))
	}
	c.secrets.Set(key, secrets, []string{ds.Spec.NodeName})

	copied := ds.DeepCopy()
	data, version, err := runtime.EncodeForLC(copied, &copied.TypeMeta, "Dataset")
	if err != nil {
		return err
	}
	c.downstream.Publish(key, version, data, ds.Spec.NodeName)
	return nil
}

func (c *Controller) unpublish(namespace, name string) {
	key := runtime.Key(Kind, namespace, name)
	c.secrets.Set(key, nil, nil)
	c.downstream.Unpublish(key)
}

// PrimeDownstream implements runtime.DownstreamPrimer.
func (c *Controller) PrimeDownstream(context.Context) error {
	return runtime.PublishAll("datasets", c.lister.List, c.publish)
}
