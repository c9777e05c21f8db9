package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ll,categories=sedna
// +kubebuilder:printcolumn:name="Round",type=integer,JSONPath=`.status.round`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.stage`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.stageState`
// +kubebuilder:printcolumn:name="Models",type=integer,JSONPath=`.status.knowledgeBase.AIModels.numberOfAIModels`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// LifelongLearningJob keeps a cloud knowledge base of tasks and models, recognises unseen tasks at
// the edge and learns them.
type LifelongLearningJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LLJobSpec `json:"spec"`
	// +optional
	Status LLJobStatus `json:"status,omitempty"`
}

// LLJobSpec describes the dataset and the three stages.
type LLJobSpec struct {
	Dataset    LLDataset    `json:"dataset"`
	TrainSpec  LLTrainSpec  `json:"trainSpec"`
	EvalSpec   LLEvalSpec   `json:"evalSpec"`
	DeploySpec LLDeploySpec `json:"deploySpec"`
	// +optional
	CredentialName string `json:"credentialName,omitempty"`
	// +kubebuilder:validation:MinLength=1
	OutputDir string `json:"outputDir"`
}

// LLDataset names the dataset and the share of new samples that goes to training.
type LLDataset struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:XValidation:rule="self > 0.0 && self <= 1.0",message="trainProb must be in (0, 1]"
	TrainProb float64 `json:"trainProb"`
}

// LLTrainSpec is the training stage.
type LLTrainSpec struct {
	Template corev1.PodTemplateSpec `json:"template"`
	Trigger  Trigger                `json:"trigger"`
}

// LLEvalSpec is the evaluation stage.
type LLEvalSpec struct {
	Template corev1.PodTemplateSpec `json:"template"`
}

// LLDeploySpec is the inference worker.
type LLDeploySpec struct {
	Template corev1.PodTemplateSpec `json:"template"`
}

// KnowledgeBase summarises the cloud knowledge base; the JSON keys are upstream's.
type KnowledgeBase struct {
	AIModels  AIModels  `json:"AIModels"`
	AIClasses AIClasses `json:"AIClasses"`
	Samples   Samples   `json:"samples"`
}

// AIModels lists the task models the knowledge base holds.
type AIModels struct {
	NumberOfAIModels int `json:"numberOfAIModels"`
	// +optional
	ListOfAIModels []AIModel `json:"listOfAIModels,omitempty"`
}

// AIModel is one task model.
type AIModel struct {
	ModelID              string  `json:"modelID"`
	AveragePrecision     float64 `json:"averagePrecision"`
	NumberOfTrainSamples int     `json:"numberOfTrainSamples"`
}

// AIClasses lists the classes the knowledge base knows.
type AIClasses struct {
	NumberOfAIClasses int `json:"numberOfAIClasses"`
	// +optional
	ListOfAIClasses []string `json:"listOfAIClasses,omitempty"`
}

// Samples counts the unseen-task samples.
type Samples struct {
	NumberOfLabeledUnseenSample int `json:"numberOfLabeledUnseenSample"`
	NumberOfUnseenSample        int `json:"numberOfUnseenSample"`
}

// LLJobStatus reports the round, the stage, past rounds and the knowledge base.
type LLJobStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// +optional
	KnowledgeBase *KnowledgeBase `json:"knowledgeBase,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	LearningProgress `json:",inline"`
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true

// LifelongLearningJobList is a list of LifelongLearningJobs.
type LifelongLearningJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LifelongLearningJob `json:"items"`
}
