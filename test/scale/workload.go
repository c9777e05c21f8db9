package scale

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
)

// The workload generator: JointInferenceServices and IncrementalLearningJobs spread over the
// fleet's nodes (object i on node i mod N), using two shared Models and the nodes' Datasets.
// Every object has children in the API and a copy on its node's LC:
//
//   - a JointInferenceService: the edge and cloud Deployments, the cloud Service, its worker-token
//     Secret, and the service on the LC of its edge node;
//   - an IncrementalLearningJob: its inference Deployment, its worker-token Secret, and the job on
//     the LC of its Dataset's node.

const workloadPrefix = "w-"

// workloadCounts are what the generator's objects converge to.
type workloadCounts struct {
	deployments, services, secrets, onLCs int
}

func (w workloadCounts) String() string {
	return fmt.Sprintf("%d Deployments, %d Services, %d worker-token Secrets, %d objects on their LCs",
		w.deployments, w.services, w.secrets, w.onLCs)
}

// expectedChildren of ji services and il jobs.
func expectedChildren(ji, il int) workloadCounts {
	return workloadCounts{deployments: 2*ji + il, services: ji, secrets: ji + il, onLCs: ji + il}
}

// ExpectedChildren describes what objects workload objects converge to, as
// FleetResult.WorkloadCounts.String() prints it.
func ExpectedChildren(objects int) string {
	return expectedChildren(objects-objects/2, objects/2).String()
}

func workloadModels() []*sednav1.Model {
	return []*sednav1.Model{
		{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Spec: sednav1.ModelSpec{URL: "/models/big/model.pb", Format: "pb"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "little"}, Spec: sednav1.ModelSpec{URL: "/models/little/model.pb", Format: "pb"}},
	}
}

func workerTemplate(node, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "worker", Image: image}},
		Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}}}
}

func workloadJI(i, nodes int) *sednav1.JointInferenceService {
	return &sednav1.JointInferenceService{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%sji-%05d", workloadPrefix, i)},
		Spec: sednav1.JointInferenceServiceSpec{
			EdgeWorker: sednav1.EdgeWorker{
				Model:             sednav1.ModelReference{Name: "little"},
				HardExampleMining: sednav1.HardExampleMining{Name: "IBT"},
				Template:          workerTemplate(nodeName(i%nodes), "example/little:v1"),
			},
			CloudWorker: sednav1.CloudWorker{
				Model:    sednav1.ModelReference{Name: "big"},
				Template: workerTemplate(nodeName((i+1)%nodes), "example/big:v1"),
			},
		},
	}
}

func workloadIL(i, nodes int) *sednav1.IncrementalLearningJob {
	node := nodeName(i % nodes)
	trigger := sednav1.Trigger{CheckPeriodSeconds: 60,
		Condition: sednav1.TriggerCondition{Operator: ">", Threshold: 500, Metric: "num_of_samples"}}
	return &sednav1.IncrementalLearningJob{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%sil-%05d", workloadPrefix, i)},
		Spec: sednav1.ILJobSpec{
			Dataset:      sednav1.ILDataset{Name: fmt.Sprintf("ds-%d", i%nodes), TrainProb: 0.8},
			InitialModel: sednav1.ModelReference{Name: "little"},
			TrainSpec:    sednav1.TrainSpec{Template: workerTemplate(node, "example/train:v1"), Trigger: trigger},
			EvalSpec:     sednav1.EvalSpec{Template: workerTemplate(node, "example/eval:v1")},
			DeploySpec: sednav1.DeploySpec{
				Model: sednav1.DeployModel{Name: "little", HotUpdateEnabled: true, PollPeriodSeconds: 60},
				Trigger: sednav1.Trigger{CheckPeriodSeconds: 60,
					Condition: sednav1.TriggerCondition{Operator: ">", Threshold: 0.1, Metric: "precision_delta"}},
				HardExampleMining: sednav1.HardExampleMining{Name: "IBT"},
				Template:          workerTemplate(node, "example/infer:v1"),
			},
			OutputDir: "/output/" + node,
		},
	}
}

// childWatch counts the generator's children in the fleet's namespace from a watch.
type workloadWatch struct {
	deployments, services, secrets atomic.Int64
	cancel                         context.CancelFunc
}

func watchWorkload(ctx context.Context, t testing.TB, kube kubernetes.Interface) *workloadWatch {
	w := &workloadWatch{}
	ctx, w.cancel = context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(fleetNamespace))
	count := func(c *atomic.Int64, match func(name string) bool) cache.ResourceEventHandler {
		name := func(obj any) string {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if m, ok := obj.(metav1.Object); ok {
				return m.GetName()
			}
			return ""
		}
		return cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) {
				if match(name(obj)) {
					c.Add(1)
				}
			},
			DeleteFunc: func(obj any) {
				if match(name(obj)) {
					c.Add(-1)
				}
			},
		}
	}
	ours := func(name string) bool { return strings.HasPrefix(name, workloadPrefix) }
	for informer, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		factory.Apps().V1().Deployments().Informer(): count(&w.deployments, ours),
		factory.Core().V1().Services().Informer():    count(&w.services, ours),
		factory.Core().V1().Secrets().Informer(): count(&w.secrets, func(name string) bool {
			return ours(name) && strings.HasSuffix(name, "-worker-token")
		}),
	} {
		_, err := informer.AddEventHandler(h)
		require.NoError(t, err)
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return w
}

func (w *workloadWatch) counts(f *fleet) workloadCounts {
	return workloadCounts{deployments: int(w.deployments.Load()), services: int(w.services.Load()),
		secrets: int(w.secrets.Load()), onLCs: f.workloadHeld()}
}

// createWorkload creates the Models and objects JointInferenceServices and IncrementalLearningJobs
// (half each, JIs first), and waits until every child exists and every LC holds its objects. It
// returns the time from the first create to convergence and what converged.
func createWorkload(ctx context.Context, t testing.TB, kube kubernetes.Interface, sedna sednaclientset.Interface, f *fleet,
	objects int) (time.Duration, workloadCounts) {
	nodes := f.n
	ji, il := objects-objects/2, objects/2
	want := expectedChildren(ji, il)
	w := watchWorkload(ctx, t, kube)
	defer w.cancel()
	start := time.Now()
	for _, m := range workloadModels() {
		_, err := sedna.SednaV1alpha1().Models(fleetNamespace).Create(ctx, m, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	parallel(ctx, t, objects, func(ctx context.Context, i int) error {
		if i < ji {
			_, err := sedna.SednaV1alpha1().JointInferenceServices(fleetNamespace).Create(ctx, workloadJI(i, nodes), metav1.CreateOptions{})
			return err
		}
		_, err := sedna.SednaV1alpha1().IncrementalLearningJobs(fleetNamespace).Create(ctx, workloadIL(i-ji, nodes), metav1.CreateOptions{})
		return err
	})
	var last workloadCounts
	waitFor(ctx, t, 30*time.Minute, "every workload object has its children and is on its LC", func() bool {
		c := w.counts(f)
		last = c
		return c.deployments >= want.deployments && c.services >= want.services && c.secrets >= want.secrets && c.onLCs >= want.onLCs
	})
	return time.Since(start), last
}
