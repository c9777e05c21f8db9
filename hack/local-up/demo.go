package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	"github.com/sedna-go/sedna/test/localcluster"
	"github.com/sedna-go/sedna/test/localsedna"
)

// runDemo runs the joint inference MNIST example (examples/joint_inference/mnist) in namespace
// default: the models are trained if needed and put on the nodes, the example's YAML is applied,
// and once GM's workers are up the 10,000 test images go through the edge worker.
func runDemo(ctx context.Context, s *localsedna.Sedna) error {
	root := localcluster.RepoRoot()
	fmt.Println("Demo: joint inference on MNIST (examples/joint_inference/mnist)")
	out, err := s.InstallMNISTModels(ctx)
	if err != nil {
		return err
	}
	fmt.Print(out)
	manifest := filepath.Join(root, "examples", "joint_inference", "mnist", "mnist-joint-inference.yaml")
	if out, err := s.Kubectl(ctx, "apply", "--server-side", "-n", "default", "-f", manifest); err != nil {
		return fmt.Errorf("applying %s: %w\n%s", manifest, err, out)
	}
	fmt.Println("Applied", manifest, "; waiting for GM to start the cloud and edge workers ...")
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		ji, err := s.Client.SednaV1alpha1().JointInferenceServices("default").Get(ctx, "mnist-ji", metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // not there yet
		}
		return apimeta.IsStatusConditionTrue(ji.Status.Conditions, sednav1.ConditionReady), nil
	})
	if err != nil {
		return fmt.Errorf("the joint inference service did not become Ready: %w", err)
	}
	edge, _ := s.Node(localsedna.EdgeNodeName(1))
	edgeURL := "http://" + edge.IP + ":8000"
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := http.Get(edgeURL + "/healthz")
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return fmt.Errorf("the edge worker at %s did not answer: %w", edgeURL, err)
	}
	if out, err := s.Kubectl(ctx, "get", "ji,deployments,services,pods", "-n", "default", "-o", "wide"); err == nil {
		fmt.Println(out)
	}
	fmt.Println("Sending the 10,000 MNIST test images through the edge worker at", edgeURL, "...")
	eval := exec.CommandContext(ctx, filepath.Join(s.BinDir(), "mnist-eval"), "--edge-url", edgeURL)
	eval.Dir, eval.Stdout, eval.Stderr = root, os.Stdout, os.Stderr
	if err := eval.Run(); err != nil {
		return fmt.Errorf("mnist-eval: %w", err)
	}
	fmt.Println("Waiting for the edge worker's report to reach the service's status through its LC ...")
	_ = wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		ji, err := s.Client.SednaV1alpha1().JointInferenceServices("default").Get(ctx, "mnist-ji", metav1.GetOptions{})
		return err == nil && len(ji.Status.Metrics) > 0, nil
	})
	out, err = s.Kubectl(ctx, "get", "ji", "mnist-ji", "-n", "default", "-o", "jsonpath={range .status.metrics[*]}{.key}={.value}{\"\\n\"}{end}")
	if err != nil {
		return fmt.Errorf("reading the service's metrics: %w\n%s", err, out)
	}
	fmt.Printf("status.metrics of jointinferenceservice default/mnist-ji:\n%s\n", out)
	return nil
}
