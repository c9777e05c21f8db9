package v1alpha1

import (
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=va,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Succeeded",type=integer,JSONPath=`.status.succeeded`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// VideoAnalyticsJob detects and tracks objects in video streams at the edge.
type VideoAnalyticsJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec VideoAnalyticsJobSpec `json:"spec"`
	// +optional
	Status JobStatus `json:"status,omitempty"`
}

// VideoAnalyticsJobSpec is a Job spec plus the detection model and the Kafka switch.
type VideoAnalyticsJobSpec struct {
	batchv1.JobSpec `json:",inline"`
	// +optional
	KafkaSupport bool           `json:"kafkaSupport,omitempty"`
	Model        ModelReference `json:"model"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// VideoAnalyticsJobList is a list of VideoAnalyticsJobs.
type VideoAnalyticsJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []VideoAnalyticsJob `json:"items"`
}
