package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=il,categories=sedna
// +kubebuilder:printcolumn:name="Round",type=integer,JSONPath=`.status.round`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.stage`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.stageState`
// +kubebuilder:printcolumn:name="Metrics",type=string,JSONPath=`.status.rounds[-1].metrics`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// IncrementalLearningJob retrains, evaluates and redeploys an edge model whenever enough new
// labelled samples have arrived: the model improves with use.
type IncrementalLearningJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec ILJobSpec `json:"spec"`
	// +optional
	Status ILJobStatus `json:"status,omitempty"`
}

// ILJobSpec describes the dataset, the initial model and the three stages.
type ILJobSpec struct {
	Dataset      ILDataset      `json:"dataset"`
	InitialModel ModelReference `json:"initialModel"`
	TrainSpec    TrainSpec      `json:"trainSpec"`
	EvalSpec     EvalSpec       `json:"evalSpec"`
	DeploySpec   DeploySpec     `json:"deploySpec"`
	// CredentialName names a Secret with S3 credentials for outputDir.
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
	// OutputDir is where rounds write their data and models (host path or s3://).
	// +kubebuilder:validation:MinLength=1
	OutputDir string `json:"outputDir"`
}

// ILDataset names the dataset and the share of new samples that goes to training.
type ILDataset struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// TrainProb is the share of new samples used for training; the rest is for evaluation.
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 1.0",message="trainProb must be in (0, 1]"
	TrainProb float64 `json:"trainProb"`
}

// TrainSpec is the training stage: its worker and the trigger that starts it.
type TrainSpec struct {
	Template corev1.PodTemplateSpec `json:"template"`
	Trigger  Trigger                `json:"trigger"`
}

// EvalSpec is the evaluation stage.
type EvalSpec struct {
	// InitialEvalModel is the model the first trained model is compared with.
	// +optional
	InitialEvalModel *ModelReference        `json:"initialEvalModel,omitempty"`
	Template         corev1.PodTemplateSpec `json:"template"`
}

// DeploySpec is the deployment stage: the inference worker, the model it serves, and the trigger
// that decides whether an evaluated model is deployed.
type DeploySpec struct {
	Model             DeployModel            `json:"model"`
	Trigger           Trigger                `json:"trigger"`
	HardExampleMining HardExampleMining      `json:"hardExampleMining"`
	Template          corev1.PodTemplateSpec `json:"template"`
}

// DeployModel is the model the inference worker serves and how it is updated.
type DeployModel struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// HotUpdateEnabled makes the inference worker load a new model without a restart.
	// +optional
	HotUpdateEnabled bool `json:"hotUpdateEnabled,omitempty"`
	// PollPeriodSeconds is how often the worker checks for a new model.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=60
	// +optional
	PollPeriodSeconds int64 `json:"pollPeriodSeconds,omitempty"`
}

// ILJobStatus reports the round, the stage and the history of past rounds.
type ILJobStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (inference worker serving), Training, Failed (a stage failed and why).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	LearningProgress `json:",inline"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// IncrementalLearningJobList is a list of IncrementalLearningJobs.
type IncrementalLearningJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IncrementalLearningJob `json:"items"`
}
