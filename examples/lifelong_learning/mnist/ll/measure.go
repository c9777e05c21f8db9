package ll

import (
	"fmt"
	"io"
	"strings"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
	"github.com/sedna-go/sedna/pkg/kb"
	"github.com/sedna-go/sedna/pkg/sdk/lifelong"
)

// MeasureOptions size the measurement.
type MeasureOptions struct {
	// Rotations are the tasks in order of arrival.
	Rotations []int
	// InitialTrain labelled images train the first task.
	InitialTrain int
	// Each later task arrives in a stream of StreamNew images of the new task mixed with
	// StreamKnown images of the tasks already learned (evenly).
	StreamNew, StreamKnown int
	// TestPerTask test images (the same base images, rotated) measure each task.
	TestPerTask int
	// Margin lets close tasks compete on model confidence at allocation (lifelong.Router).
	Margin float64
	Seed   uint64
}

// DefaultMeasureOptions are the README's settings.
func DefaultMeasureOptions() MeasureOptions {
	return MeasureOptions{Rotations: []int{0, 45, 90}, InitialTrain: 5000, StreamNew: 3000, StreamKnown: 3000, TestPerTask: 2000, Margin: 0.1, Seed: 1}
}

// Phase is the arrival of one new task in the stream.
type Phase struct {
	Task string
	// Stream samples of the new task (positives) and of known tasks (negatives).
	New, Known int
	// AUROC of the knowledge base's unseen score (distance to the nearest task centroid over
	// the task's radius) and, for comparison, of 1 - the maximum softmax probability of the
	// model the sample was routed to.
	AUROC, AUROCMaxSoftmax float64
	// Detection at the operating threshold (score > 1).
	Detection lifelong.Detection
	// Learned is how many labelled samples of the new task trained its model.
	Learned int
}

// Measurement is what Measure found.
type Measurement struct {
	Options  MeasureOptions
	Tasks    []string
	Phases   []Phase
	Lifelong lifelong.AccuracyMatrix
	Baseline lifelong.AccuracyMatrix
	// TaskAllocation[i] is the share of test samples of task i routed to task i's model at the end.
	TaskAllocation []float64
	// Labels: InitialLabels for the first task; then StreamLabels of StreamSamples.
	InitialLabels, StreamLabels, StreamSamples int
}

// Measure runs the tasks through the lifelong learner and the fine-tuning baseline.
func Measure(train, test model.Dataset, opts MeasureOptions) (*Measurement, error) {
	if len(opts.Rotations) < 2 {
		return nil, fmt.Errorf("measuring needs at least two tasks, got %d", len(opts.Rotations))
	}
	need := opts.InitialTrain + (len(opts.Rotations)-1)*(opts.StreamNew+opts.StreamKnown)
	if need > train.Len() || opts.TestPerTask > test.Len() {
		return nil, fmt.Errorf("the options need %d training and %d test images, MNIST has %d and %d", need, opts.TestPerTask, train.Len(), test.Len())
	}
	order := Shuffle(train.Len(), opts.Seed)
	next := 0
	take := func(n int) model.Dataset {
		part := Subset(train, order[next:next+n])
		next += n
		return part
	}
	result := &Measurement{Options: opts}
	for _, rotation := range opts.Rotations {
		result.Tasks = append(result.Tasks, TaskID(rotation))
	}
	testSets := make([]model.Dataset, len(opts.Rotations))
	for j, rotation := range opts.Rotations {
		testSets[j] = Rotate(test.Head(opts.TestPerTask), float64(rotation))
	}
	// The forward-transfer reference: an untrained model of the same architecture.
	untrained, err := model.New(Arch, opts.Seed+1000)
	if err != nil {
		return nil, err
	}
	for _, set := range testSets {
		accuracy, _ := untrained.Evaluate(set)
		result.Lifelong.Reference = append(result.Lifelong.Reference, accuracy)
	}
	result.Baseline.Reference = result.Lifelong.Reference

	// Task 0: labelled up front, for both learners.
	first := Rotate(take(opts.InitialTrain), float64(opts.Rotations[0]))
	result.InitialLabels = first.Len()
	learner := newLearner(opts.Margin)
	if err := learner.learn(result.Tasks[0], opts.Rotations[0], first, opts.Seed); err != nil {
		return nil, err
	}
	baseline, err := model.New(Arch, opts.Seed)
	if err != nil {
		return nil, err
	}
	if _, err := baseline.Train(first, TrainOptions(opts.Seed)); err != nil {
		return nil, err
	}
	if err := result.evaluate(learner, baseline, testSets); err != nil {
		return nil, err
	}

	for i := 1; i < len(opts.Rotations); i++ {
		phase := Phase{Task: result.Tasks[i], New: opts.StreamNew, Known: opts.StreamKnown}
		newSamples := Rotate(take(opts.StreamNew), float64(opts.Rotations[i]))
		var knownParts []model.Dataset
		for k := 0; k < i; k++ {
			share := opts.StreamKnown / i
			if k == i-1 {
				share = opts.StreamKnown - share*(i-1)
			}
			knownParts = append(knownParts, Rotate(take(share), float64(opts.Rotations[k])))
		}
		known := Concat(knownParts...)
		newScores, newMSP, err := learner.unseenScores(newSamples)
		if err != nil {
			return nil, err
		}
		knownScores, knownMSP, err := learner.unseenScores(known)
		if err != nil {
			return nil, err
		}
		phase.AUROC = lifelong.AUROC(newScores, knownScores)
		phase.AUROCMaxSoftmax = lifelong.AUROC(newMSP, knownMSP)
		phase.Detection = lifelong.DetectAt(newScores, knownScores, 1)
		result.StreamSamples += newSamples.Len() + known.Len()
		// Every flagged sample is labelled (a false positive costs a label too); the labelled
		// samples are grouped by their rotation attribute and the new task's group trains its
		// model. Known tasks' groups are not retrained: their models stay as they were learned.
		result.StreamLabels += phase.Detection.TruePositives + phase.Detection.FalsePositives
		var flagged []int
		for s, score := range newScores {
			if score > 1 {
				flagged = append(flagged, s)
			}
		}
		learned := Subset(newSamples, flagged)
		phase.Learned = learned.Len()
		if err := learner.learn(result.Tasks[i], opts.Rotations[i], learned, opts.Seed+uint64(i)); err != nil {
			return nil, err
		}
		// The baseline fine-tunes its one model on the same labelled samples.
		if _, err := baseline.Train(learned, TrainOptions(opts.Seed+uint64(i))); err != nil {
			return nil, err
		}
		result.Phases = append(result.Phases, phase)
		if err := result.evaluate(learner, baseline, testSets); err != nil {
			return nil, err
		}
	}
	for j, set := range testSets {
		share, err := learner.allocationShare(set, result.Tasks[j])
		if err != nil {
			return nil, err
		}
		result.TaskAllocation = append(result.TaskAllocation, share)
	}
	return result, nil
}

func (m *Measurement) evaluate(learner *learner, baseline *model.Model, testSets []model.Dataset) error {
	var lifelongRow, baselineRow []float64
	for _, set := range testSets {
		accuracy, err := learner.accuracy(set)
		if err != nil {
			return err
		}
		lifelongRow = append(lifelongRow, accuracy)
		baselineAccuracy, _ := baseline.Evaluate(set)
		baselineRow = append(baselineRow, baselineAccuracy)
	}
	m.Lifelong.R = append(m.Lifelong.R, lifelongRow)
	m.Baseline.R = append(m.Baseline.R, baselineRow)
	return nil
}

// learner is the lifelong learner in memory: the index and one model per task, as the train
// worker builds them and the inference worker serves them.
type learner struct {
	index  *kb.Index
	models map[string]*model.Model
	margin float64
}

func newLearner(margin float64) *learner {
	return &learner{models: map[string]*model.Model{}, margin: margin}
}

func (l *learner) learn(id string, rotation int, data model.Dataset, seed uint64) error {
	trained, task, err := TrainTask(id, rotation, data, seed)
	if err != nil {
		return err
	}
	task.Model.URL = "memory:" + id
	index, err := lifelong.Merge(l.index, FeatureSpace, FeatureDimension, []kb.Task{task})
	if err != nil {
		return err
	}
	l.index, l.models[id] = index, trained
	return nil
}

func (l *learner) router() (*lifelong.Router, error) {
	router, err := lifelong.NewRouter(l.index)
	if err != nil {
		return nil, err
	}
	router.Margin = l.margin
	return router, nil
}

// Infer routes one image and classifies it with the allocated task's model.
func (l *learner) infer(router *lifelong.Router, image []float64) (lifelong.Allocation, model.Prediction, error) {
	return Infer(router, func(task string) (*model.Model, error) { return l.models[task], nil }, image)
}

// Infer routes one image (Features) and classifies it with the allocated task's model; models
// returns a task's model.
func Infer(router *lifelong.Router, models func(task string) (*model.Model, error), image []float64) (lifelong.Allocation, model.Prediction, error) {
	predictions := map[string]model.Prediction{}
	predict := func(task string) (model.Prediction, error) {
		if prediction, ok := predictions[task]; ok {
			return prediction, nil
		}
		m, err := models(task)
		if err != nil {
			return model.Prediction{}, err
		}
		if m == nil {
			return model.Prediction{}, fmt.Errorf("no model for task %s", task)
		}
		prediction, err := m.Predict(image)
		if err != nil {
			return model.Prediction{}, err
		}
		predictions[task] = prediction
		return prediction, nil
	}
	allocation, err := router.Allocate(Features(image), func(task string) (float64, error) {
		prediction, err := predict(task)
		return lifelong.MaxSoftmax(prediction.Probs), err
	})
	if err != nil {
		return lifelong.Allocation{}, model.Prediction{}, err
	}
	prediction, err := predict(allocation.Task)
	return allocation, prediction, err
}

func (l *learner) accuracy(data model.Dataset) (float64, error) {
	router, err := l.router()
	if err != nil {
		return 0, err
	}
	correct := 0
	for i := 0; i < data.Len(); i++ {
		_, prediction, err := l.infer(router, data.Image(i))
		if err != nil {
			return 0, err
		}
		if prediction.Label == int(data.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(data.Len()), nil
}

func (l *learner) allocationShare(data model.Dataset, task string) (float64, error) {
	router, err := l.router()
	if err != nil {
		return 0, err
	}
	hits := 0
	for i := 0; i < data.Len(); i++ {
		allocation, _, err := l.infer(router, data.Image(i))
		if err != nil {
			return 0, err
		}
		if allocation.Task == task {
			hits++
		}
	}
	return float64(hits) / float64(data.Len()), nil
}

// unseenScores returns the knowledge base's unseen score of every image, and 1 - the maximum
// softmax probability of the model it is routed to.
func (l *learner) unseenScores(data model.Dataset) ([]float64, []float64, error) {
	router, err := l.router()
	if err != nil {
		return nil, nil, err
	}
	scores := make([]float64, data.Len())
	msp := make([]float64, data.Len())
	for i := range scores {
		allocation, prediction, err := l.infer(router, data.Image(i))
		if err != nil {
			return nil, nil, err
		}
		scores[i] = allocation.Score
		msp[i] = 1 - lifelong.MaxSoftmax(prediction.Probs)
	}
	return scores, msp, nil
}

// Print writes the measurement as the README shows it.
func (m *Measurement) Print(w io.Writer) error {
	var b strings.Builder
	opts := m.Options
	fmt.Fprintf(&b, "Rotated MNIST, tasks in order of arrival: %s\n", strings.Join(m.Tasks, ", "))
	fmt.Fprintf(&b, "task 0 learned from %d labelled images; each later task arrives in a stream of %d new-task and %d known-task images; %d test images per task\n\n",
		opts.InitialTrain, opts.StreamNew, opts.StreamKnown, opts.TestPerTask)
	fmt.Fprintln(&b, "Unseen-task detection (score = distance to the nearest task centroid / task radius; unseen if > 1)")
	fmt.Fprintln(&b, "| new task | AUROC | precision | recall | flagged | AUROC of 1-max softmax (comparison) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|")
	var positives, negatives lifelong.Detection
	for _, phase := range m.Phases {
		d := phase.Detection
		fmt.Fprintf(&b, "| %s | %.4f | %.4f | %.4f | %d of %d | %.4f |\n", phase.Task, phase.AUROC, d.Precision(), d.Recall(),
			d.TruePositives+d.FalsePositives, phase.New+phase.Known, phase.AUROCMaxSoftmax)
		positives.TruePositives += d.TruePositives
		positives.FalsePositives += d.FalsePositives
		positives.FalseNegatives += d.FalseNegatives
		negatives.TrueNegatives += d.TrueNegatives
	}
	positives.TrueNegatives = negatives.TrueNegatives
	fmt.Fprintf(&b, "| all | | %.4f | %.4f | | |\n\n", positives.Precision(), positives.Recall())
	for _, learner := range []struct {
		name   string
		matrix lifelong.AccuracyMatrix
	}{{"Lifelong learning (one model per task, routed by the knowledge base)", m.Lifelong}, {"Baseline: one model fine-tuned on each new task", m.Baseline}} {
		fmt.Fprintf(&b, "%s: accuracy on each task (columns) after learning each task (rows)\n", learner.name)
		fmt.Fprintf(&b, "| after learning | %s |\n|---|%s\n", strings.Join(m.Tasks, " | "), strings.Repeat("---|", len(m.Tasks)))
		for i, row := range learner.matrix.R {
			cells := make([]string, len(row))
			for j, v := range row {
				cells[j] = fmt.Sprintf("%.2f%%", 100*v)
			}
			fmt.Fprintf(&b, "| %s | %s |\n", m.Tasks[i], strings.Join(cells, " | "))
		}
		lost := learner.matrix.Forgetting()
		lostCells := make([]string, len(lost))
		for j, v := range lost {
			lostCells[j] = fmt.Sprintf("%s %.2f points", m.Tasks[j], 100*v)
		}
		fmt.Fprintf(&b, "backward transfer %.2f points, forward transfer %.2f points (untrained reference %.2f%%); lost since learned: %s\n\n",
			100*learner.matrix.BackwardTransfer(), 100*learner.matrix.ForwardTransfer(), 100*mean(learner.matrix.Reference), strings.Join(lostCells, ", "))
	}
	shares := make([]string, len(m.TaskAllocation))
	for j, share := range m.TaskAllocation {
		shares[j] = fmt.Sprintf("%s %.2f%%", m.Tasks[j], 100*share)
	}
	fmt.Fprintf(&b, "Task allocation at the end (test samples routed to their own task's model): %s\n\n", strings.Join(shares, ", "))
	fmt.Fprintf(&b, "Labels (MNIST's labels stand in for human labellers): %d for the first task, then %d of the %d stream images (%.1f%%) instead of all %d\n",
		m.InitialLabels, m.StreamLabels, m.StreamSamples, 100*float64(m.StreamLabels)/float64(m.StreamSamples), m.StreamSamples)
	_, err := io.WriteString(w, b.String())
	return err
}

func mean(values []float64) float64 {
	var sum float64
	for _, v := range values {
		sum += v
	}
	return sum / float64(len(values))
}
