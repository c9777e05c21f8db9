package worker

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/sdk/hem"
	"github.com/sedna-go/sedna/pkg/sdk/jointinference"
)

// CloudPredictor answers POST /{job}/predict. Its "data" is one image, a
// flat array of model.Pixels numbers in [0,1]; its "result" is a
// model.Prediction {"label": k, "probs": [10 numbers]}.
func CloudPredictor(models *Watcher) jointinference.Predictor {
	return jointinference.PredictorFunc(func(_ context.Context, req jointinference.PredictRequest) (any, error) {
		var image []float64
		if err := json.Unmarshal(req.Data, &image); err != nil {
			return nil, fmt.Errorf(`"data" must be one image, a flat array of %d numbers in [0,1]: %w`, model.Pixels, err)
		}
		prediction, err := models.Current().Predict(image)
		if err != nil {
			return nil, fmt.Errorf(`"data": %w`, err)
		}
		return prediction, nil
	})
}

// EdgeModel runs the little model on one image ([]float64) and hands its
// class probabilities to the miner.
func EdgeModel(models *Watcher) jointinference.EdgeModel {
	return jointinference.EdgeModelFunc(func(_ context.Context, data any) (jointinference.EdgePrediction, error) {
		image, ok := data.([]float64)
		if !ok {
			return jointinference.EdgePrediction{}, fmt.Errorf("edge model input is %T, want []float64", data)
		}
		prediction, err := models.Current().Predict(image)
		if err != nil {
			return jointinference.EdgePrediction{}, err
		}
		return jointinference.EdgePrediction{
			Result: prediction,
			Mining: hem.Inference{Probabilities: prediction.Probs},
		}, nil
	})
}
