package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=sedna
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Format",type=string,JSONPath=`.spec.format`
// +kubebuilder:printcolumn:name="Samples",type=integer,JSONPath=`.status.numberOfSamples`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Dataset is a data set kept on one edge node; that node's LC counts its samples.
type Dataset struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DatasetSpec `json:"spec"`
	// +optional
	Status DatasetStatus `json:"status,omitempty"`
}

// DatasetSpec says where the dataset's index file is and which node monitors it.
type DatasetSpec struct {
	// URL is the index file (the directory for format dir): a host path on nodeName, or s3://bucket/path.
	// +kubebuilder:validation:MinLength=1
	URL string `json:"url"`
	// Format of the dataset, case-insensitive: txt (an index file, a sample per line), csv (an index
	// file, a header line, then a sample per line) or dir (a directory the workers read, as in
	// upstream's federated YOLO example; the LC does not count it and its Ready condition says so).
	// +kubebuilder:validation:XValidation:rule="self.lowerAscii() in ['txt', 'csv', 'dir']",message="format must be txt, csv or dir"
	Format string `json:"format"`
	// NodeName is the node whose LC monitors the dataset.
	// +kubebuilder:validation:MinLength=1
	NodeName string `json:"nodeName"`
	// CredentialName names a Secret in the same namespace with S3 credentials.
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
}

// DatasetStatus is what the dataset's LC last reported.
type DatasetStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (the index file was read and counted) with the reason when it could not be.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	UpdateTime *metav1.Time `json:"updateTime,omitempty"`
	// +optional
	NumberOfSamples int `json:"numberOfSamples"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// DatasetList is a list of Datasets.
type DatasetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Dataset `json:"items"`
}
