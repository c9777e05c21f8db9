package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ji,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Edge Node",type=string,JSONPath=`.spec.edgeWorker.template.spec.nodeName`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// JointInferenceService runs a shallow model at the edge and a deep model in the cloud; the edge
// sends the examples it finds hard to the cloud.
type JointInferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec JointInferenceServiceSpec `json:"spec"`
	// +optional
	Status JointInferenceServiceStatus `json:"status,omitempty"`
}

// JointInferenceServiceSpec describes the two workers.
type JointInferenceServiceSpec struct {
	EdgeWorker  EdgeWorker  `json:"edgeWorker"`
	CloudWorker CloudWorker `json:"cloudWorker"`
}

// EdgeWorker is the edge half: the shallow model and the hard-example-mining algorithm.
type EdgeWorker struct {
	Model             ModelReference         `json:"model"`
	HardExampleMining HardExampleMining      `json:"hardExampleMining"`
	Template          corev1.PodTemplateSpec `json:"template"`
	// +optional
	HPA *HPA `json:"hpa,omitempty"`
}

// CloudWorker is the cloud half serving the deep model.
type CloudWorker struct {
	Model    ModelReference         `json:"model"`
	Template corev1.PodTemplateSpec `json:"template"`
	// +optional
	HPA *HPA `json:"hpa,omitempty"`
}

// JointInferenceServiceStatus reports the workers and the edge's inference metrics.
type JointInferenceServiceStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (both workers available), Running, Failed (with the reason).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	Phase WorkloadPhase `json:"phase,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// Active is the number of worker Deployments that are available.
	// +optional
	Active int32 `json:"active"`
	// +optional
	Failed int32 `json:"failed"`
	// Metrics are the edge worker's last report: inference count, hard examples, cloud upload ratio.
	// +optional
	Metrics []Metric `json:"metrics,omitempty"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// JointInferenceServiceList is a list of JointInferenceServices.
type JointInferenceServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []JointInferenceService `json:"items"`
}
