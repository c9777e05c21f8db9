// Package v1alpha1 holds the sedna.io/v1alpha1 API: the eleven kinds a Sedna user writes
// (datasets and models as resources, the four collaborative learning features and the multi-edge
// inference services).
//
// Spec field names, types and required-ness follow upstream Sedna so that existing YAML applies
// unchanged. Status follows the Kubernetes API conventions (metav1.Condition, observedGeneration)
// and keeps the fields upstream users read (phase, counts, metrics, numberOfSamples, knowledgeBase).
//
// +k8s:deepcopy-gen=package
// +groupName=sedna.io
package v1alpha1
