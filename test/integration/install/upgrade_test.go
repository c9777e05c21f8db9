package install

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// previousRef is "the previous version" an upgrade starts from. This repository has no release
// tag yet, so it is the commit that merged the first install format (install.sh, charts/sedna and
// build/ with the knowledge base; session 5): the newest state of the install format before
// anything after it changed the CRDs (the multi-edge services' Ready column), the GM RBAC, the LC
// DaemonSet and the chart. SEDNA_UPGRADE_FROM names another ref (a release tag, once one exists).
// The test reads it from git history (git archive), so it needs a clone with that commit.
const previousRef = "7f45abb4ef16ba21f5405eb6da85ccf140bf19eb"

// The images' tags: the previous version is installed as v0.6.0 so that the upgrade changes the
// images (both versions' manifests say v0.7.0), as a release upgrade does.
const (
	previousTag = "v0.6.0"
	currentTag  = "v0.7.0"
	usersNS     = "users"
)

// previousVersion extracts build/, scripts/ and charts/ of the previous version into a temporary
// directory, as its release bundle would hold them, and returns that directory.
func previousVersion(t *testing.T, root string) string {
	t.Helper()
	ref := previousRef
	if r := os.Getenv("SEDNA_UPGRADE_FROM"); r != "" {
		ref = r
	}
	dir := t.TempDir()
	cmd := exec.Command("bash", "-o", "errexit", "-o", "pipefail", "-c",
		`git -C "$1" archive --format=tar "$2" build scripts charts | tar -x -C "$3"`, "extract", root, ref, dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "reading the previous version %s from git history (a shallow clone lacks it: git fetch --unshallow, or set SEDNA_UPGRADE_FROM): %s", ref, out)
	t.Logf("previous version: %s (git archive into %s)", ref, dir)
	return dir
}

// newUpgradeEnv starts a control plane with a cloud and an edge node and objects of others (a
// namespace, a ConfigMap in it and a ClusterRole) that an upgrade must not touch.
func newUpgradeEnv(t *testing.T) (*env, context.Context) {
	t.Helper()
	e, ctx := newEnv(t)
	kube := e.kube
	var err error
	for _, n := range []string{"bystander", usersNS} {
		_, err = kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = kube.CoreV1().ConfigMaps("bystander").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return e, ctx
}

// createUserObjects creates one object of each of the 11 kinds (test/integration/testdata) in
// namespace users and sets its status through the status subresource, as GM would.
func (e *env) createUserObjects(ctx context.Context) {
	t := e.t
	t.Helper()
	files, err := filepath.Glob(filepath.Join(e.root, "test", "integration", "testdata", "*.yaml"))
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, f := range files {
		for _, o := range decodeFile(t, f) {
			o.SetNamespace(usersNS)
			gvr := e.gvr(o)
			created, err := e.dyn.Resource(gvr).Namespace(usersNS).Create(ctx, o, metav1.CreateOptions{})
			require.NoError(t, err, "creating %s", f)
			// A status of every kind's shape: all have observedGeneration, metav1.Conditions and a
			// start time.
			now := metav1.NewTime(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
			status := map[string]any{
				"observedGeneration": int64(1),
				"conditions": []any{map[string]any{
					"type": "Ready", "status": "True", "reason": "BeforeUpgrade", "message": "set by the upgrade test",
					"lastTransitionTime": now.UTC().Format(time.RFC3339), "observedGeneration": int64(1),
				}},
			}
			if o.GetKind() != "Dataset" && o.GetKind() != "Model" {
				status["startTime"] = now.UTC().Format(time.RFC3339)
			}
			created.Object["status"] = status
			updated, err := e.dyn.Resource(gvr).Namespace(usersNS).UpdateStatus(ctx, created, metav1.UpdateOptions{})
			require.NoError(t, err, "setting the status of %s", f)
			got, _, _ := unstructured.NestedSlice(updated.Object, "status", "conditions")
			require.Len(t, got, 1, "%s: the status subresource kept no condition", o.GetKind())
			kinds[o.GetKind()] = true
		}
	}
	require.Len(t, kinds, 11, "testdata should hold an object of each of the 11 kinds: %v", kinds)
}

func decodeFile(t *testing.T, f string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	return decodeObjects(t, data)
}

// sednaObjects returns every object of the 11 kinds in the cluster, whole but for resourceVersion
// and managedFields (which an apply of the CRDs may legitimately not touch, but need not keep).
func (e *env) sednaObjects(ctx context.Context) map[string]map[string]any {
	t := e.t
	t.Helper()
	out := map[string]map[string]any{}
	for _, k := range sednaKinds {
		var list *unstructured.UnstructuredList
		// Right after a CRD is applied the API server may answer NotFound for a moment, while it
		// replaces that resource's handler (clients such as GM's informers retry the same way).
		require.Eventually(t, func() bool {
			var err error
			list, err = e.dyn.Resource(schema.GroupVersionResource{Group: "sedna.io", Version: "v1alpha1", Resource: k}).List(ctx, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				require.NoError(t, err, "listing %s", k)
			}
			return err == nil
		}, eventually, tick, "listing %s", k)
		for _, it := range list.Items {
			it.SetResourceVersion("")
			it.SetManagedFields(nil)
			out[it.GetKind()+" "+it.GetNamespace()+"/"+it.GetName()] = it.Object
		}
	}
	return out
}

var sednaKinds = []string{"datasets", "models", "jointinferenceservices", "incrementallearningjobs",
	"federatedlearningjobs", "lifelonglearningjobs", "reidjobs", "videoanalyticsjobs",
	"featureextractionservices", "objectsearchservices", "objecttrackingservices"}

// resourceVersions lists every object of every listable resource with its resource version.
func (e *env) resourceVersions(ctx context.Context) map[objectKey]string {
	t := e.t
	t.Helper()
	lists, err := e.disc.ServerPreferredResources()
	require.NoError(t, err)
	out := map[objectKey]string{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(t, err)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" {
				continue
			}
			items, err := e.dyn.Resource(gv.WithResource(r.Name)).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) {
				continue // gone since discovery (install.sh's scratch CRDs are deleted without waiting)
			}
			require.NoError(t, err, "listing %s", r.Name)
			for _, it := range items.Items {
				out[objectKey(fmt.Sprintf("%s/%s %s/%s", gv.Group, r.Name, it.GetNamespace(), it.GetName()))] = it.GetResourceVersion()
			}
		}
	}
	return out
}

// sednaOwns says whether an upgrade may change the object: Sedna's namespace, its CRDs and their
// API registration, the cluster roles and bindings of build/gm. Nodes and Leases are the control
// plane's own churn (the node lifecycle controller marks the kubelet-less nodes unreachable;
// leader election renews its Leases) and are not compared either.
func sednaOwns(k objectKey, clusterRBAC map[string]bool) bool {
	s := string(k)
	resource, rest, _ := strings.Cut(s, " ")
	ns, name, _ := strings.Cut(rest, "/")
	switch {
	case ns == "sedna":
		return true
	case resource == "/nodes" || resource == "coordination.k8s.io/leases":
		return true
	case resource == "apiextensions.k8s.io/customresourcedefinitions":
		return strings.HasSuffix(name, ".sedna.io")
	case resource == "apiregistration.k8s.io/apiservices":
		return name == "v1alpha1.sedna.io"
	case resource == "rbac.authorization.k8s.io/clusterroles" || resource == "rbac.authorization.k8s.io/clusterrolebindings":
		return clusterRBAC[name]
	}
	return false
}

// checkUpgraded checks what an upgrade to this checkout must have done: every Sedna object and
// its status as before, the CRDs the current ones (served and stored as v1alpha1), GM's
// Deployment rolled to the current image, the LCs' DaemonSet on it too, certificates kept, and
// nothing that Sedna does not own touched.
func (e *env) checkUpgraded(ctx context.Context, crdDir string, objects map[string]map[string]any, versions map[objectKey]string, secrets map[string]*corev1.Secret) {
	t := e.t
	t.Helper()
	crdFiles, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	require.NoError(t, err)
	require.Len(t, crdFiles, 11)
	wantCRDs := map[string]*unstructured.Unstructured{}
	for _, f := range crdFiles {
		c := decodeFile(t, f)[0]
		wantCRDs[c.GetName()] = c
	}
	after := e.sednaObjects(ctx)
	require.Len(t, after, len(objects))
	for k, want := range objects {
		require.Equal(t, want, after[k], "%s changed in the upgrade", k)
		status, _, _ := unstructured.NestedMap(after[k], "status")
		require.NotEmpty(t, status, "%s lost its status", k)
	}

	clusterRBAC := map[string]bool{}
	for _, want := range manifestObjects(t, e.root) {
		switch want.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			clusterRBAC[want.GetName()] = true
		case "CustomResourceDefinition":
			want = wantCRDs[want.GetName()]
			require.NotNil(t, want)
			got, err := e.get(ctx, want)
			require.NoError(t, err)
			w, _, _ := unstructured.NestedFieldNoCopy(want.Object, "spec")
			g, _, _ := unstructured.NestedFieldNoCopy(got.Object, "spec")
			requireSubset(t, w, g, "CRD "+want.GetName()+" spec")
			crd := &apiextensionsv1.CustomResourceDefinition{}
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, crd))
			require.Equal(t, []string{"v1alpha1"}, crd.Status.StoredVersions, "CRD %s stored versions", crd.Name)
			served := false
			for _, v := range crd.Spec.Versions {
				served = served || (v.Name == "v1alpha1" && v.Served && v.Storage)
			}
			require.True(t, served, "CRD %s should serve and store v1alpha1", crd.Name)
			established := false
			for _, c := range crd.Status.Conditions {
				established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
			}
			require.True(t, established, "CRD %s established", crd.Name)
		}
	}

	// GM rolled: the controller-manager made a ReplicaSet with the current image and scaled it up
	// (nothing runs the pods here, so the roll does not finish, but it began).
	gm, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err)
	wantImage := "kubeedge/sedna-gm:" + currentTag
	require.Equal(t, wantImage, gm.Spec.Template.Spec.Containers[0].Image)
	require.Eventually(t, func() bool {
		rss, err := e.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=sedna-gm"})
		if err != nil {
			return false
		}
		return slices.ContainsFunc(rss.Items, func(rs appsv1.ReplicaSet) bool {
			return rs.Spec.Template.Spec.Containers[0].Image == wantImage && rs.Spec.Replicas != nil && *rs.Spec.Replicas > 0 &&
				metav1.IsControlledBy(&rs, gm)
		})
	}, eventually, tick, "GM's Deployment should roll to a ReplicaSet of %s", wantImage)
	lc, err := e.kube.AppsV1().DaemonSets(ns).Get(ctx, "sedna-lc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "kubeedge/sedna-lc:"+currentTag, lc.Spec.Template.Spec.Containers[0].Image)

	for name, before := range secrets {
		got, err := e.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, before.Data, got.Data, "Secret %s changed in the upgrade", name)
	}

	now := e.resourceVersions(ctx)
	var touched []string
	for k, v := range versions {
		if sednaOwns(k, clusterRBAC) {
			continue
		}
		if now[k] != v {
			touched = append(touched, fmt.Sprintf("%s (%s -> %q)", k, v, now[k]))
		}
	}
	require.Empty(t, touched, "the upgrade changed or deleted objects Sedna does not own")
	_, err = e.kube.CoreV1().ConfigMaps("bystander").Get(ctx, "mine", metav1.GetOptions{})
	require.NoError(t, err)
}

func (e *env) secrets(ctx context.Context, names ...string) map[string]*corev1.Secret {
	out := map[string]*corev1.Secret{}
	for _, n := range names {
		s, err := e.kube.CoreV1().Secrets(ns).Get(ctx, n, metav1.GetOptions{})
		require.NoError(e.t, err, "Secret %s", n)
		out[n] = s
	}
	return out
}

// TestUpgradeScriptFromPrevious installs the previous version with its own install.sh, creates
// an object of every kind with a status, upgrades with this checkout's install.sh, and checks
// that every object and its status is unchanged, the CRDs are the current ones, GM rolled to the
// new image, and nothing of others was touched.
func TestUpgradeScriptFromPrevious(t *testing.T) {
	e, ctx := newUpgradeEnv(t)
	prev := previousVersion(t, e.root)

	out, code := e.runFrom(ctx, prev, "SEDNA_WAIT=false", "SEDNA_VERSION="+previousTag)
	require.Equal(t, 0, code, "the previous install.sh:\n%s", out)
	gm, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "kubeedge/sedna-gm:"+previousTag, gm.Spec.Template.Spec.Containers[0].Image)
	e.createUserObjects(ctx)
	objects := e.sednaObjects(ctx)
	secrets := e.secrets(ctx, "sedna-gm-tls", "sedna-kb-token")
	versions := e.resourceVersions(ctx)

	out, code = e.run(ctx, "SEDNA_WAIT=false")
	require.Equal(t, 0, code, "the current install.sh over the previous install:\n%s", out)
	require.Contains(t, out, "checking stored Sedna objects against the new CRDs")
	require.Contains(t, out, "keeping GM's certificate")
	e.checkUpgraded(ctx, filepath.Join(e.root, "build", "crds"), objects, versions, secrets)
	// The multi-edge services' Ready column is what changed in the CRDs since the previous version.
	crd, err := e.get(ctx, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": map[string]any{"name": "objecttrackingservices.sedna.io"}}})
	require.NoError(t, err)
	require.Contains(t, fmt.Sprint(crd.Object["spec"]), `.status.conditions[?(@.type=="Ready")].status`)

	// The schema check's scratch CRDs are gone (deleted without waiting: soon).
	require.Eventually(t, func() bool {
		crds, err := e.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		for _, c := range crds.Items {
			if strings.Contains(c.GetName(), "upgrade-check") {
				return false
			}
		}
		return true
	}, eventually, tick, "install.sh left its scratch CRDs")

	e.refusesInvalidStoredObjects(ctx)
}

// refusesInvalidStoredObjects: CRDs that would make a stored object invalid are not applied;
// install.sh names the object and the field, and changes nothing (on the cluster of
// TestUpgradeScriptFromPrevious, after its upgrade: a control plane of its own would double the
// package's time).
func (e *env) refusesInvalidStoredObjects(ctx context.Context) {
	t := e.t
	t.Helper()
	objects := e.sednaObjects(ctx)

	// A "next version" whose Dataset schema allows only format csv: the stored fixture Dataset
	// (format txt) becomes invalid under it.
	next := t.TempDir()
	cp := exec.Command("cp", "-a", filepath.Join(e.root, "build"), filepath.Join(e.root, "scripts"), next)
	cpOut, err := cp.CombinedOutput()
	require.NoError(t, err, "%s", cpOut)
	crdFile := filepath.Join(next, "build", "crds", "sedna.io_datasets.yaml")
	crd := decodeFile(t, crdFile)[0]
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	v := versions[0].(map[string]any)
	require.NoError(t, unstructured.SetNestedSlice(v, []any{"csv"}, "schema", "openAPIV3Schema", "properties", "spec", "properties", "format", "enum"))
	require.NoError(t, unstructured.SetNestedSlice(crd.Object, versions, "spec", "versions"))
	data, err := crd.MarshalJSON()
	require.NoError(t, err)
	// install.sh edits the CRD as text (its name and group for the scratch copy): keep it YAML.
	yamlData, err := sigsyaml.JSONToYAML(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(crdFile, yamlData, 0o644))
	before := e.resourceVersions(ctx)

	out, code := e.runFrom(ctx, next, "SEDNA_WAIT=false")
	require.NotEqual(t, 0, code, "install.sh applied CRDs that make a stored Dataset invalid:\n%s", out)
	require.Contains(t, out, "stored datasets that the new schema rejects")
	require.Contains(t, out, `"fixture-dataset"`)
	require.Contains(t, out, "spec.format")
	require.Contains(t, out, "the CRDs were not changed")
	require.NotContains(t, out, "upgrade-check", "the report names the kinds' own group, not the scratch one")
	after := e.resourceVersions(ctx)
	for k, v := range before {
		if strings.HasPrefix(string(k), "apiextensions.k8s.io/") {
			require.Equal(t, v, after[k], "%s changed although install.sh refused", k)
		}
	}
	// The scratch CRDs are deleted without waiting: they go (with their API registration) soon.
	require.Eventually(t, func() bool {
		for k := range e.resourceVersions(ctx) {
			if strings.Contains(string(k), "upgrade-check") {
				return false
			}
		}
		return true
	}, eventually, tick, "install.sh left its scratch CRDs")
	require.Equal(t, objects, e.sednaObjects(ctx))

	// Told to, it applies them; the object stays stored as it was.
	out, code = e.runFrom(ctx, next, "SEDNA_WAIT=false", "SEDNA_ALLOW_INVALID_OBJECTS=true")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "applying the CRDs anyway")
	require.Equal(t, objects, e.sednaObjects(ctx))
}

// TestUpgradeHelmFromPrevious installs the previous version's chart with helm, creates an object
// of every kind with a status, and upgrades the way docs/install.md says: the CRDs with kubectl
// first (Helm never upgrades crds/), then helm upgrade with this checkout's chart.
//
// The previous version's chart (previousRef) cannot be installed: its crds/ are build/crds with
// their descriptions, 12 MB, and Helm keeps the chart in the release's Secret ("Request entity
// too large"). No Helm release of it can exist, so there is nothing to upgrade from; the test
// checks that this is so and then starts from this checkout's chart installed with the previous
// images, which checks the upgrade procedure itself (CRDs first, new images, values kept,
// certificates kept). With SEDNA_UPGRADE_FROM naming a version whose chart installs, it upgrades
// from that chart.
func TestUpgradeHelmFromPrevious(t *testing.T) {
	e, ctx := newUpgradeEnv(t)
	prev := previousVersion(t, e.root)
	installHelm := exec.CommandContext(ctx, filepath.Join(e.root, "hack", "install-helm.sh"))
	helmOut, err := installHelm.CombinedOutput()
	require.NoError(t, err, "hack/install-helm.sh: %s", helmOut)
	helmCmd := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(e.root, "_output", "bin", "helm"), append(args, "--kubeconfig", e.cluster.Kubeconfig)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	helm := func(args ...string) {
		t.Helper()
		out, err := helmCmd(args...)
		require.NoError(t, err, "helm %v:\n%s", args, out)
	}
	out, err := helmCmd("install", "sedna", filepath.Join(prev, "charts", "sedna"), "--namespace", ns, "--create-namespace",
		"--set", "image.tag="+previousTag)
	if os.Getenv("SEDNA_UPGRADE_FROM") == "" {
		require.Error(t, err, "the chart of %s installed, which docs/install.md says it cannot: upgrade from it here", previousRef)
	}
	if err != nil {
		require.Contains(t, out, "Request entity too large", "the previous chart failed to install for another reason")
		t.Logf("the previous version's chart cannot be installed (%s); starting from this chart with the previous images", strings.TrimSpace(out))
		helm("install", "sedna", filepath.Join(e.root, "charts", "sedna"), "--namespace", ns, "--create-namespace",
			"--set", "image.tag="+previousTag)
	}
	gm, err := e.kube.AppsV1().Deployments(ns).Get(ctx, "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "kubeedge/sedna-gm:"+previousTag, gm.Spec.Template.Spec.Containers[0].Image)
	e.createUserObjects(ctx)
	objects := e.sednaObjects(ctx)
	secrets := e.secrets(ctx, "sedna-gm-tls")
	versions := e.resourceVersions(ctx)

	// docs/install.md, "CRDs and upgrades with Helm".
	kubectl := exec.CommandContext(ctx, filepath.Join(e.root, "_output", "bin", "kubectl"), "--kubeconfig", e.cluster.Kubeconfig,
		"apply", "--server-side", "--force-conflicts", "-f", filepath.Join(e.root, "charts", "sedna", "crds"))
	kout, err := kubectl.CombinedOutput()
	require.NoError(t, err, "%s", kout)
	helm("upgrade", "sedna", filepath.Join(e.root, "charts", "sedna"), "--namespace", ns,
		"--reset-then-reuse-values", "--set", "image.tag="+currentTag)
	e.checkUpgraded(ctx, filepath.Join(e.root, "charts", "sedna", "crds"), objects, versions, secrets)

	// Values the current chart added since the previous version have their defaults: GM's
	// configuration is the current build/'s.
	for _, want := range manifestObjects(t, e.root) {
		if want.GetKind() != "ConfigMap" && want.GetKind() != "PersistentVolumeClaim" {
			continue
		}
		got, err := e.get(ctx, want)
		require.NoError(t, err, "%s %s after helm upgrade", want.GetKind(), want.GetName())
		if want.GetKind() == "ConfigMap" {
			require.YAMLEq(t, want.Object["data"].(map[string]any)["gm.yaml"].(string),
				got.Object["data"].(map[string]any)["gm.yaml"].(string), "GM's configuration after helm upgrade")
		}
	}
}

func decodeObjects(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			require.ErrorIs(t, err, io.EOF)
			return out
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}
