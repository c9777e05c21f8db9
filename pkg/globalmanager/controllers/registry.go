// Package controllers assembles the GM: the explicit registry of feature controllers and the
// manager that builds, primes and runs them.
package controllers

import (
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/dataset"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/featureextraction"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/federatedlearning"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/incrementallearning"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/jointinference"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/lifelonglearning"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/model"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/objectsearch"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/objecttracking"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/reid"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/secret"
	"github.com/sedna-go/sedna/pkg/globalmanager/controllers/videoanalytics"
	"github.com/sedna-go/sedna/pkg/globalmanager/runtime"
)

// Factory builds a feature controller from the shared dependencies.
type Factory func(deps runtime.Dependencies) (runtime.FeatureController, error)

// Feature is one registry entry.
type Feature struct {
	Name string
	New  Factory
}

// Registry lists the features in the order they are built and primed. Features that bind shared
// Models and Secrets come first; Model and Secret come last so they publish to every node the
// others bound.
type Registry []Feature

// NewRegistry returns every feature this GM has.
func NewRegistry() Registry {
	return Registry{
		{Name: dataset.Name, New: dataset.New},
		{Name: jointinference.Name, New: jointinference.New},
		{Name: incrementallearning.Name, New: incrementallearning.New},
		{Name: federatedlearning.Name, New: federatedlearning.New},
		{Name: lifelonglearning.Name, New: lifelonglearning.New},
		{Name: videoanalytics.Name, New: videoanalytics.New},
		{Name: featureextraction.Name, New: featureextraction.New},
		{Name: reid.Name, New: reid.New},
		{Name: objectsearch.Name, New: objectsearch.New},
		{Name: objecttracking.Name, New: objecttracking.New},
		{Name: model.Name, New: model.New},
		{Name: secret.Name, New: secret.New},
	}
}

// Names returns the feature names in order.
func (r Registry) Names() []string {
	names := make([]string, len(r))
	for i, f := range r {
		names[i] = f.Name
	}
	return names
}
