package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=objt,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Failed",type=integer,JSONPath=`.status.failed`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ObjectTrackingService tracks objects across edge cameras with tracking and re-identification
// workers.
type ObjectTrackingService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ObjectTrackingServiceSpec `json:"spec"`
	// +optional
	Status ServiceStatus `json:"status,omitempty"`
}

// ObjectTrackingServiceSpec describes the workers.
type ObjectTrackingServiceSpec struct {
	// +kubebuilder:validation:MinItems=1
	TrackingWorkers []TrackingWorker `json:"trackingWorkers"`
	ReidWorkers     ReidWorkers      `json:"reidWorkers"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// ObjectTrackingServiceList is a list of ObjectTrackingServices.
type ObjectTrackingServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ObjectTrackingService `json:"items"`
}
