package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupName is the API group of every Sedna kind.
const GroupName = "sedna.io"

// SchemeGroupVersion is the group and version the types in this package are served as.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

// Kind takes an unqualified kind and returns a group-qualified GroupKind.
func Kind(kind string) schema.GroupKind {
	return SchemeGroupVersion.WithKind(kind).GroupKind()
}

// Resource takes an unqualified resource and returns a group-qualified GroupResource.
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

var (
	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds every Sedna kind (all eleven, unlike upstream) to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&Dataset{}, &DatasetList{},
		&Model{}, &ModelList{},
		&JointInferenceService{}, &JointInferenceServiceList{},
		&IncrementalLearningJob{}, &IncrementalLearningJobList{},
		&FederatedLearningJob{}, &FederatedLearningJobList{},
		&LifelongLearningJob{}, &LifelongLearningJobList{},
		&ReidJob{}, &ReidJobList{},
		&VideoAnalyticsJob{}, &VideoAnalyticsJobList{},
		&FeatureExtractionService{}, &FeatureExtractionServiceList{},
		&ObjectSearchService{}, &ObjectSearchServiceList{},
		&ObjectTrackingService{}, &ObjectTrackingServiceList{},
	)
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
