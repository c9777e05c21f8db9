package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fe,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// FeatureExtractionService runs feature-extraction workers for multi-edge inference.
type FeatureExtractionService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FeatureExtractionServiceSpec `json:"spec"`
	// +optional
	Status FeatureExtractionServiceStatus `json:"status,omitempty"`
}

// FeatureExtractionServiceSpec is a Deployment spec plus the model and the Kafka switch.
type FeatureExtractionServiceSpec struct {
	// +optional
	KafkaSupport          bool           `json:"kafkaSupport,omitempty"`
	Model                 ModelReference `json:"model"`
	appsv1.DeploymentSpec `json:",inline"`
}

// FeatureExtractionServiceStatus reports the workers.
type FeatureExtractionServiceStatus struct {
	ServiceStatus `json:",inline"`
	// +optional
	Metrics []Metric `json:"metrics,omitempty"`
}

// ServiceStatus is the status shared by the multi-edge services.
type ServiceStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, Running, Failed (with the reason).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	Phase WorkloadPhase `json:"phase,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	Active int32 `json:"active"`
	// +optional
	Failed int32 `json:"failed"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// FeatureExtractionServiceList is a list of FeatureExtractionServices.
type FeatureExtractionServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FeatureExtractionService `json:"items"`
}
