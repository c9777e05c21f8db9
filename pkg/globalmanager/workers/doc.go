// Package workers builds the Kubernetes children of Sedna's feature resources from the pod
// templates users write: worker Deployments and Services, HorizontalPodAutoscalers, the labels,
// selectors and controller references that tie them to their owner, the environment GM gives
// workers, and the model and dataset locations they read (host paths mounted under /home/data,
// remote URLs fetched by the storage-initializer init container into /downloads).
//
// Everything here is pure: functions take the owner and what the feature computed and return
// objects; they never call the API server. Controllers own the I/O (listers, create, update) and
// decide when a child differs from what they want by comparing SpecHashAnnotation values.
package workers
