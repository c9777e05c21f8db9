package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sedna
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Updated",type=date,JSONPath=`.status.updateTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Model is a trained model file that workers load.
type Model struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ModelSpec `json:"spec"`
	// +optional
	Status ModelStatus `json:"status,omitempty"`
}

// ModelSpec says where a model is and in which format.
type ModelSpec struct {
	// URL is a host path, s3://, or http(s):// location, or a model ID for non-file load modes.
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
	// Format is free text (pb, ckpt, pkl, pth, hf, ...); the worker interprets it.
	Format string `json:"format"`
	// Devices lists the SoC versions the model was built for.
	// +optional
	Devices []string `json:"device_soc_versions,omitempty"`
	// CredentialName names a Secret in the same namespace with S3 credentials.
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
}

// ModelStatus holds the latest metrics reported for the model.
type ModelStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	UpdateTime *metav1.Time `json:"updateTime,omitempty"`
	// +optional
	Metrics []Metric `json:"metrics,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ModelList is a list of Models.
type ModelList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Model `json:"items"`
}
