package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fl,categories=sedna
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Round",type=integer,JSONPath=`.status.round`
// +kubebuilder:printcolumn:name="Active",type=integer,JSONPath=`.status.active`
// +kubebuilder:printcolumn:name="Succeeded",type=integer,JSONPath=`.status.succeeded`
// +kubebuilder:printcolumn:name="Metrics",type=string,JSONPath=`.status.metrics`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// FederatedLearningJob trains a model on data that stays on the edge: edges train locally and an
// aggregation worker combines their weights.
type FederatedLearningJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec FLJobSpec `json:"spec"`
	// +optional
	Status FLJobStatus `json:"status,omitempty"`
}

// FLJobSpec describes the aggregation worker and the training workers.
type FLJobSpec struct {
	AggregationWorker AggregationWorker `json:"aggregationWorker"`
	// +kubebuilder:validation:MinItems=1
	TrainingWorkers []TrainingWorker `json:"trainingWorkers"`
	// +optional
	PretrainedModel *ModelReference `json:"pretrainedModel,omitempty"`
	// +optional
	Transmitter *Transmitter `json:"transmitter,omitempty"`
}

// Transmitter selects how weights travel between workers. Both may be set, as upstream's federated
// YOLO sample does; s3 then wins, as in upstream's GM. Effective says which one the workers use.
type Transmitter struct {
	// +optional
	S3 *S3Transmitter `json:"s3,omitempty"`
	// +optional
	WS *WSTransmitter `json:"ws,omitempty"`
}

// S3Transmitter exchanges weights through an S3 bucket.
type S3Transmitter struct {
	// +kubebuilder:validation:MinLength=1
	AggregationDataPath string `json:"aggDataPath"`
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
}

// WSTransmitter exchanges weights over the aggregation worker's websocket.
type WSTransmitter struct{}

// AggregationWorker aggregates the training workers' weights.
type AggregationWorker struct {
	Model    ModelReference         `json:"model"`
	Template corev1.PodTemplateSpec `json:"template"`
}

// TrainingWorker trains on one edge node's dataset.
type TrainingWorker struct {
	Dataset  DatasetReference       `json:"dataset"`
	Template corev1.PodTemplateSpec `json:"template"`
}

// FLJobStatus reports the workers and the training round.
type FLJobStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Training (the last round reported), ClientsLate, Complete, Failed (with the
	// failed worker).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// +optional
	Active int32 `json:"active"`
	// +optional
	Succeeded int32 `json:"succeeded"`
	// +optional
	Failed int32 `json:"failed"`
	// +optional
	Phase WorkloadPhase `json:"phase,omitempty"`
	// Round is the last aggregation round a training worker reported.
	// +optional
	Round int32 `json:"round,omitempty"`
	// Metrics are the aggregated model's metrics as the training workers last reported them,
	// "key=value" pairs sorted by key and joined by ", " (e.g. "accuracy=0.9712"); the same
	// values go to the aggregation Model's status.metrics.
	// +optional
	Metrics string `json:"metrics,omitempty"`
}

// Condition types of a FederatedLearningJob beyond the common ones: Complete is upstream's name
// for a job whose training workers all succeeded; ClientsLate is True while the last reported
// round closed without some expected training workers; TrainersStranded is True while training
// workers still run long after the aggregation worker ended (they were away when training ended
// and wait for an aggregator that will not come back), naming them.
const (
	ConditionComplete         = "Complete"
	ConditionClientsLate      = "ClientsLate"
	ConditionTrainersStranded = "TrainersStranded"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// FederatedLearningJobList is a list of FederatedLearningJobs.
type FederatedLearningJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []FederatedLearningJob `json:"items"`
}
