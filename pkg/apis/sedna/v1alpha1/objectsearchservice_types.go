package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=objs,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ObjectSearchService searches for an object across edge cameras: a user worker, tracking workers
// and re-identification workers.
type ObjectSearchService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ObjectSearchServiceSpec `json:"spec"`
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// ObjectSearchServiceSpec describes the three kinds of workers.
type ObjectSearchServiceSpec struct {
	UserWorker UserWorker `json:"userWorker"`
	// +kubebuilder:validation:MinItems=1
	TrackingWorkers []TrackingWorker `json:"trackingWorkers"`
	ReidWorkers     ReidWorkers      `json:"reidWorkers"`
}

// UserWorker receives the search request and the results.
type UserWorker struct {
	Template corev1.PodTemplateSpec `json:"template"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ObjectSearchServiceList is a list of ObjectSearchServices.
type ObjectSearchServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ObjectSearchService `json:"items"`
}
