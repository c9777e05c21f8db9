package v1alpha1

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Metric is one named value reported by a worker, for example an accuracy or an inference count.
type Metric struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ParaSpec is one parameter of a pluggable algorithm, kept as strings as upstream does.
type ParaSpec struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// ModelReference names a Model in the same namespace.
type ModelReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// DatasetReference names a Dataset in the same namespace.
type DatasetReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// HardExampleMining selects the algorithm that decides which examples are hard. Names are open:
// the worker library resolves them (IBT, CrossEntropy, Threshold, Random, CloudOnly, EdgeOnly, or a
// custom one).
type HardExampleMining struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Parameters []ParaSpec `json:"parameters,omitempty"`
}

// HPA asks for a HorizontalPodAutoscaler on a worker Deployment.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="minReplicas must not exceed maxReplicas"
type HPA struct {
	// +kubebuilder:validation:Minimum=1
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// +kubebuilder:validation:Minimum=1
	MaxReplicas int32 `json:"maxReplicas"`
	// +optional
	Metrics []autoscalingv2.MetricSpec `json:"metrics,omitempty"`
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// TrackingWorker is one object-tracking worker of the multi-edge services.
type TrackingWorker struct {
	Template corev1.PodTemplateSpec `json:"template"`
}

// ReidWorkers is the Deployment of re-identification workers of the multi-edge services.
type ReidWorkers struct {
	appsv1.DeploymentSpec `json:",inline"`
}

// Trigger decides when a learning stage starts: an optional daily window AND a metric condition.
type Trigger struct {
	// CheckPeriodSeconds is how often the LC evaluates the trigger (upstream ignored it).
	// +kubebuilder:validation:Minimum=1
	// +optional
	CheckPeriodSeconds int `json:"checkPeriodSeconds,omitempty"`
	// +optional
	Timer     *Timer           `json:"timer,omitempty"`
	Condition TriggerCondition `json:"condition"`
}

// Timer is a daily window in the LC's local time, "HH:MM" to "HH:MM", both ends inclusive; a start
// after the end wraps past midnight. End "24:00" is the end of the day, as in upstream: the window
// runs through 23:59 and, unlike end "00:00", does not wrap. A window from midnight starts at
// "00:00"; start "24:00" is refused.
type Timer struct {
	// +kubebuilder:validation:Pattern=`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`
	// +kubebuilder:validation:XValidation:rule="self != '24:00'",message="24:00 is the end of the day and only valid as end; a window starting at midnight starts at 00:00"
	Start string `json:"start"`
	// +kubebuilder:validation:Pattern=`^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`
	End string `json:"end"`
}

// TriggerCondition compares a metric with a threshold. The metric may be indexed, as in
// "precision_delta[0]".
type TriggerCondition struct {
	// +kubebuilder:validation:Enum=gt;ge;eq;ne;le;lt;">";">=";"=";"==";"!=";"<=";"<"
	Operator  string  `json:"operator"`
	Threshold float64 `json:"threshold"`
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_.-]*(\[[0-9]+\])?$`
	Metric string `json:"metric"`
}

// WorkloadPhase is the coarse state of a Sedna workload, as upstream's phase field.
type WorkloadPhase string

// Workload phases.
const (
	PhasePending   WorkloadPhase = "Pending"
	PhaseRunning   WorkloadPhase = "Running"
	PhaseSucceeded WorkloadPhase = "Succeeded"
	PhaseFailed    WorkloadPhase = "Failed"
)

// Condition types shared by the kinds. Each kind documents which of them it sets.
const (
	// ConditionReady: the resource is usable (dataset counted, workers ready).
	ConditionReady = "Ready"
	// ConditionRunning: the workers run.
	ConditionRunning = "Running"
	// ConditionFailed: a worker failed; reason and message say which and why.
	ConditionFailed = "Failed"
	// ConditionCompleted: the job finished successfully.
	ConditionCompleted = "Completed"
	// ConditionTraining: a federated round is in progress.
	ConditionTraining = "Training"
	// ConditionDeployed: whether the last finished learning round's model was deployed (False with
	// the reason when the deploy trigger rejected it).
	ConditionDeployed = "Deployed"
)

// LearningStage is a stage of an incremental or lifelong learning round.
// +kubebuilder:validation:Enum=Train;Eval;Deploy
type LearningStage string

// Learning stages, in round order.
const (
	StageTrain  LearningStage = "Train"
	StageEval   LearningStage = "Eval"
	StageDeploy LearningStage = "Deploy"
)

// StageState is where the current stage of a learning round is, with upstream's names.
// +kubebuilder:validation:Enum=Waiting;Ready;Starting;Running;Completed;Failed
type StageState string

// Stage states.
const (
	StageWaiting   StageState = "Waiting"
	StageReady     StageState = "Ready"
	StageStarting  StageState = "Starting"
	StageRunning   StageState = "Running"
	StageCompleted StageState = "Completed"
	StageFailed    StageState = "Failed"
)

// MaxRoundHistory bounds status.rounds of learning jobs so that the object never outgrows etcd.
const MaxRoundHistory = 10

// LearningRound records one train→eval→deploy round of a learning job.
type LearningRound struct {
	// +kubebuilder:validation:Minimum=1
	Round int32 `json:"round"`
	// Stage is the furthest stage the round reached.
	// +optional
	Stage LearningStage `json:"stage,omitempty"`
	// Model is where the round's trained model was written.
	// +optional
	Model string `json:"model,omitempty"`
	// +optional
	Format string `json:"format,omitempty"`
	// Metrics are the evaluation results of the trained model.
	// +optional
	Metrics []Metric `json:"metrics,omitempty"`
	// Deployed tells whether the model went to the inference workers.
	Deployed bool `json:"deployed"`
	// Message says why a round was not deployed or failed.
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// LearningProgress is the status shared by incremental and lifelong learning jobs.
type LearningProgress struct {
	// Stage and StageState say where the current round is.
	// +optional
	Stage LearningStage `json:"stage,omitempty"`
	// +optional
	StageState StageState `json:"stageState,omitempty"`
	// StageData is the current stage's input and output as upstream's condition data: a JSON
	// document {"input":{...},"output":{...}}.
	// +optional
	StageData string `json:"stageData,omitempty"`
	// Round is the number of the current round; 0 before the first train trigger fires.
	// +optional
	Round int32 `json:"round,omitempty"`
	// Rounds holds the most recent rounds, oldest first.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Rounds []LearningRound `json:"rounds,omitempty"`
}
