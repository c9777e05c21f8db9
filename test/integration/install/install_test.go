// Package install runs scripts/installation/install.sh against a local control plane of its own
// (it installs and removes CRDs and cluster roles, which tests sharing a control plane rely on).
package install

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2/ktesting"

	sednav1 "github.com/sedna-go/sedna/pkg/apis/sedna/v1alpha1"
	sednaclientset "github.com/sedna-go/sedna/pkg/client/clientset/versioned"
	"github.com/sedna-go/sedna/test/localcluster"
)

const (
	eventually = 90 * time.Second
	tick       = 250 * time.Millisecond
	ns         = "sedna"
)

type env struct {
	t       *testing.T
	cluster *localcluster.Cluster
	kube    kubernetes.Interface
	dyn     dynamic.Interface
	disc    discovery.DiscoveryInterface
	root    string
}

// run runs install.sh with the given settings and returns its combined output and exit code.
func (e *env) run(ctx context.Context, settings ...string) (string, int) {
	e.t.Helper()
	return e.runFrom(ctx, e.root, settings...)
}

// runFrom runs the install.sh of the checkout (or release bundle) at root, which installs root's
// build/ (its default SEDNA_ROOT); the kubectl is this checkout's.
func (e *env) runFrom(ctx context.Context, root string, settings ...string) (string, int) {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "installation", "install.sh"))
	bin := filepath.Join(e.root, "_output", "bin")
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+e.cluster.Kubeconfig,
		"KUBECTL="+filepath.Join(bin, "kubectl"),
		"PATH="+bin+":"+os.Getenv("PATH"),
	)
	cmd.Env = append(cmd.Env, settings...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if err != nil {
		var exitErr *exec.ExitError
		require.ErrorAs(e.t, err, &exitErr, "install.sh: %s", out.String())
		code = exitErr.ExitCode()
	}
	return out.String(), code
}

// objectKey names one object: group/resource namespace/name.
type objectKey string

// snapshot lists every object of every listable resource in the cluster. Events are left out:
// they are the cluster's record of what happened, not objects anyone installs.
func (e *env) snapshot(ctx context.Context) map[objectKey]bool {
	e.t.Helper()
	lists, err := e.disc.ServerPreferredResources()
	require.NoError(e.t, err)
	out := map[objectKey]bool{}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		require.NoError(e.t, err)
		for _, r := range l.APIResources {
			if !slices.Contains(r.Verbs, "list") || r.Name == "events" {
				continue
			}
			gvr := gv.WithResource(r.Name)
			items, err := e.dyn.Resource(gvr).List(ctx, metav1.ListOptions{})
			require.NoError(e.t, err, "listing %s", gvr)
			for _, it := range items.Items {
				out[objectKey(fmt.Sprintf("%s/%s %s/%s", gv.Group, r.Name, it.GetNamespace(), it.GetName()))] = true
			}
		}
	}
	return out
}

// manifestObjects decodes build/'s manifests the way install.sh applies them (default images).
func manifestObjects(t *testing.T, root string) []*unstructured.Unstructured {
	t.Helper()
	var files []string
	for _, pattern := range []string{"build/crds/*.yaml", "build/gm/*.yaml", "build/lc/*.yaml", "build/kb/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				break
			}
			if len(u.Object) > 0 {
				out = append(out, u)
			}
		}
	}
	return out
}

func (e *env) gvr(u *unstructured.Unstructured) schema.GroupVersionResource {
	e.t.Helper()
	gvk := u.GroupVersionKind()
	res, err := e.disc.ServerResourcesForGroupVersion(gvk.GroupVersion().String())
	require.NoError(e.t, err)
	for _, r := range res.APIResources {
		if r.Kind == gvk.Kind && !strings.Contains(r.Name, "/") {
			return gvk.GroupVersion().WithResource(r.Name)
		}
	}
	e.t.Fatalf("no resource for %s", gvk)
	return schema.GroupVersionResource{}
}

// newEnv starts a control plane with a cloud node and an edge node (labelled as install.sh's
// LC DaemonSet expects), and the clients the checks use.
func newEnv(t *testing.T) (*env, context.Context) {
	t.Helper()
	root := localcluster.RepoRoot()
	bin := filepath.Join(root, "_output", "bin")
	for _, b := range []string{"kube-apiserver", "kubectl"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			t.Fatalf("%s missing in %s (run hack/install-test-binaries.sh): %v", b, bin, err)
		}
	}
	_, ctx := ktesting.NewTestContext(t)
	cluster, err := localcluster.Start(ctx, localcluster.Options{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cluster.Stop()) })
	kube, err := kubernetes.NewForConfig(cluster.Config)
	require.NoError(t, err)
	dyn, err := dynamic.NewForConfig(cluster.Config)
	require.NoError(t, err)
	disc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	require.NoError(t, err)
	require.NoError(t, cluster.AddNode(ctx, "cloud-node", nil))
	require.NoError(t, cluster.AddNode(ctx, "edge-node-1", map[string]string{"node-role.kubernetes.io/edge": ""}))
	return &env{t: t, cluster: cluster, kube: kube, dyn: dyn, disc: disc, root: root}, ctx
}

func (e *env) get(ctx context.Context, u *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return e.dyn.Resource(e.gvr(u)).Namespace(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
}

// TestInstallScript installs Sedna with install.sh on a control plane with a cloud node and an edge
// node (registered, scheduled onto, but running nothing: readiness cannot be reached here), checks
// every object, re-runs it, refuses to delete the CRDs under a user's object, deletes, and checks
// that the cluster holds exactly what it held before — and that the objects of others survive.
func TestInstallScript(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("install.sh generates GM's certificate with openssl: %v", err)
	}
	e, ctx := newEnv(t)
	cluster, kube, root := e.cluster, e.kube, e.root

	// Objects of others: they must survive install and delete.
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, err := kube.CoreV1().ServiceAccounts("bystander").Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	}, eventually, tick)
	_, err = kube.CoreV1().ConfigMaps("bystander").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "bystander"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	// The controller-manager publishes kube-root-ca.crt into every namespace a moment after start;
	// snapshot only once it has, so its ConfigMaps are not counted as left behind by install.sh.
	require.Eventually(t, func() bool {
		nss, err := kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for _, n := range nss.Items {
			if _, err := kube.CoreV1().ConfigMaps(n.Name).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{}); err != nil {
				return false
			}
		}
		return true
	}, eventually, tick, "kube-root-ca.crt should be published in every namespace")
	before := e.snapshot(ctx)

	// No kubelet runs the pods, so waiting for readiness must fail, naming what is not ready. A
	// kubectl that records its command lines: no secret may be on one (ps shows them to all).
	argvLog := filepath.Join(t.TempDir(), "kubectl-argv")
	recorder := filepath.Join(t.TempDir(), "kubectl")
	require.NoError(t, os.WriteFile(recorder, []byte("#!/bin/sh\nprintf '%s\\n' \"$*\" >>"+argvLog+"\nexec "+
		filepath.Join(e.root, "_output", "bin", "kubectl")+" \"$@\"\n"), 0o755))
	out, code := e.run(ctx, "SEDNA_WAIT_TIMEOUT=5s", "KUBECTL="+recorder)
	require.Equal(t, 2, code, "install.sh without running pods should fail its readiness wait:\n%s", out)
	require.Contains(t, out, "not ready: deployment.apps/sedna-gm")
	kbTokens, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-kb-token", metav1.GetOptions{})
	require.NoError(t, err)
	argv, err := os.ReadFile(argvLog)
	require.NoError(t, err)
	require.Contains(t, string(argv), "create secret generic sedna-kb-token")
	for _, key := range []string{"token", "read-token"} {
		value := kbTokens.Data[key]
		require.Len(t, value, 44, "%s: base64 of 32 random bytes", key)
		require.NotContains(t, string(argv), string(value), "the knowledge base's %s was on kubectl's command line", key)
	}

	objects := manifestObjects(t, root)
	require.GreaterOrEqual(t, len(objects), 11+10, "build/ should hold the 11 CRDs and GM's and LC's objects")
	crds := 0
	for _, want := range objects {
		got, err := e.get(ctx, want)
		require.NoError(t, err, "%s %s/%s should exist", want.GetKind(), want.GetNamespace(), want.GetName())
		if want.GetKind() == "CustomResourceDefinition" {
			crds++
		}
		for _, field := range [][]string{{"spec"}, {"rules"}, {"roleRef"}, {"subjects"}, {"data"}} {
			w, found, _ := unstructured.NestedFieldNoCopy(want.Object, field...)
			if !found {
				continue
			}
			g, _, _ := unstructured.NestedFieldNoCopy(got.Object, field...)
			requireSubset(t, w, g, fmt.Sprintf("%s %s %v", want.GetKind(), want.GetName(), field))
		}
	}
	require.Equal(t, 11, crds, "all 11 CRDs")

	// GM off the edge, two replicas; the LC on the edge node only.
	gm, err := kube.AppsV1().Deployments(ns).Get(ctx, "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 2, *gm.Spec.Replicas)
	require.Eventually(t, func() bool {
		return podsOn(ctx, kube, "app.kubernetes.io/name=sedna-gm") == "cloud-node,cloud-node" &&
			podsOn(ctx, kube, "app.kubernetes.io/name=sedna-lc") == "edge-node-1"
	}, eventually, tick, "GM pods should be scheduled on the cloud node, the LC on the edge node: gm %s, lc %s",
		podsOn(ctx, kube, "app.kubernetes.io/name=sedna-gm"), podsOn(ctx, kube, "app.kubernetes.io/name=sedna-lc"))

	// Certificates: GM's serving certificate verifies against the CA the LCs mount, for the names
	// LCs dial; no ConfigMap holds a private key.
	secret, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.SecretTypeTLS, secret.Type)
	caCM, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "sedna-gm-ca", metav1.GetOptions{})
	require.NoError(t, err)
	verifyServing(t, secret.Data["tls.crt"], caCM.Data["ca.crt"])
	cms, err := kube.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, cm := range cms.Items {
		for k, v := range cm.Data {
			require.NotContains(t, v, "PRIVATE KEY", "ConfigMap %s/%s key %s", cm.Namespace, cm.Name, k)
		}
	}

	// Re-running changes nothing: the same certificate, no spec changed.
	generations := map[string]int64{}
	versions := map[string]string{}
	for _, o := range objects {
		got, err := e.get(ctx, o)
		require.NoError(t, err)
		generations[o.GetKind()+"/"+o.GetName()] = got.GetGeneration()
		versions[o.GetKind()+"/"+o.GetName()] = got.GetResourceVersion()
	}
	out, code = e.run(ctx, "SEDNA_WAIT=false")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "keeping GM's certificate")
	for _, o := range objects {
		got, err := e.get(ctx, o)
		require.NoError(t, err)
		key := o.GetKind() + "/" + o.GetName()
		require.Equal(t, generations[key], got.GetGeneration(), "%s changed generation on re-run", key)
		switch o.GetKind() {
		case "ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service":
			require.Equal(t, versions[key], got.GetResourceVersion(), "%s was written on re-run", key)
		}
	}
	again, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, secret.ResourceVersion, again.ResourceVersion, "the certificate was replaced on re-run")

	// Images from another registry and version.
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_IMAGE_REPO=registry.local:5000/sedna", "SEDNA_VERSION=v9.9.9")
	require.Equal(t, 0, code, out)
	gm, err = kube.AppsV1().Deployments(ns).Get(ctx, "sedna-gm", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "registry.local:5000/sedna/sedna-gm:v9.9.9", gm.Spec.Template.Spec.Containers[0].Image)
	lc, err := kube.AppsV1().DaemonSets(ns).Get(ctx, "sedna-lc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "registry.local:5000/sedna/sedna-lc:v9.9.9", lc.Spec.Template.Spec.Containers[0].Image)

	// Rotation: a new certificate, and LCs trust both the new and the previous CA.
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_ROTATE_CERTS=true")
	require.Equal(t, 0, code, out)
	rotated, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	require.NotEqual(t, secret.Data["tls.crt"], rotated.Data["tls.crt"])
	caCM2, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "sedna-gm-ca", metav1.GetOptions{})
	require.NoError(t, err)
	verifyServing(t, rotated.Data["tls.crt"], caCM2.Data["ca.crt"])
	verifyServing(t, secret.Data["tls.crt"], caCM2.Data["ca.crt"])
	require.Equal(t, 2, strings.Count(caCM2.Data["ca.crt"], "BEGIN CERTIFICATE"))

	// An openssl that fails at signing, after the CA's and GM's keys are written: the script dies
	// by errexit, and its temporary directory, keys included, is gone all the same.
	failingBin := t.TempDir()
	realOpenssl, err := exec.LookPath("openssl")
	require.NoError(t, err)
	shim := "#!/bin/sh\nif [ \"$1\" = x509 ]; then echo 'openssl: signing failed (test)' >&2; exit 1; fi\nexec " + realOpenssl + " \"$@\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(failingBin, "openssl"), []byte(shim), 0o755))
	tmp := t.TempDir()
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_ROTATE_CERTS=true", "TMPDIR="+tmp,
		"PATH="+failingBin+":"+filepath.Join(root, "_output", "bin")+":"+os.Getenv("PATH"))
	require.NotEqual(t, 0, code, "install.sh should fail when openssl fails:\n%s", out)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left, "install.sh left its temporary directory (with private keys) behind:\n%s", out)
	unchanged, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, rotated.Data["tls.crt"], unchanged.Data["tls.crt"], "a failed rotation changed the certificate")

	// SEDNA_GM_ADDRESS, for edge nodes without cluster DNS (KubeEdge without EdgeMesh): refused
	// when malformed; refused while the kept certificate does not name its host (the LCs would
	// refuse GM), changing nothing; with a new certificate the LCs dial it and GM's certificate
	// verifies for it as well as for the Service's names.
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS=https://10.0.0.5:30900")
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "SEDNA_GM_ADDRESS=https://10.0.0.5:30900: want host:port")
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS=10.0.0.5:30900")
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "does not name 10.0.0.5 of SEDNA_GM_ADDRESS")
	lc, err = kube.AppsV1().DaemonSets(ns).Get(ctx, "sedna-lc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "gm.sedna:9000", envValue(lc.Spec.Template.Spec.Containers[0].Env, "GM_ADDRESS"))
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS=10.0.0.5:30900", "SEDNA_ROTATE_CERTS=true")
	require.Equal(t, 0, code, out)
	lc, err = kube.AppsV1().DaemonSets(ns).Get(ctx, "sedna-lc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.5:30900", envValue(lc.Spec.Template.Spec.Containers[0].Env, "GM_ADDRESS"))
	withIP, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	caCM3, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "sedna-gm-ca", metav1.GetOptions{})
	require.NoError(t, err)
	verifyServing(t, withIP.Data["tls.crt"], caCM3.Data["ca.crt"])
	verifyServingIP(t, withIP.Data["tls.crt"], caCM3.Data["ca.crt"], "10.0.0.5")
	// A re-run with the same address keeps that certificate.
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS=10.0.0.5:30900")
	require.Equal(t, 0, code, out)
	// A re-run (an upgrade) without SEDNA_GM_ADDRESS keeps the LCs on the address they dial, and
	// a rotation without it issues a certificate that still names that address's host.
	out, code = e.run(ctx, "SEDNA_WAIT=false")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "keeping the LCs' GM address 10.0.0.5:30900")
	lc, err = kube.AppsV1().DaemonSets(ns).Get(ctx, "sedna-lc", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "10.0.0.5:30900", envValue(lc.Spec.Template.Spec.Containers[0].Env, "GM_ADDRESS"))
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_ROTATE_CERTS=true")
	require.Equal(t, 0, code, out)
	withIP, err = kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	caCM3, err = kube.CoreV1().ConfigMaps(ns).Get(ctx, "sedna-gm-ca", metav1.GetOptions{})
	require.NoError(t, err)
	verifyServingIP(t, withIP.Data["tls.crt"], caCM3.Data["ca.crt"], "10.0.0.5")
	// Malformed addresses are refused by name.
	for _, bad := range []string{"10.0.0.5:0", "10.0.0.5:99999", "999.1.1.1:30900", "1.2.3:30900"} {
		out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS="+bad)
		require.NotEqual(t, 0, code, out)
		require.Contains(t, out, "SEDNA_GM_ADDRESS="+bad+":", "the refusal names the setting")
	}
	// A certificate brought along that does not name the address's host is refused before
	// anything is applied: the live certificate stays.
	byo := t.TempDir()
	for name, data := range map[string][]byte{"tls.crt": rotated.Data["tls.crt"], "tls.key": rotated.Data["tls.key"], "ca.crt": []byte(caCM3.Data["ca.crt"])} {
		require.NoError(t, os.WriteFile(filepath.Join(byo, name), data, 0o600))
	}
	out, code = e.run(ctx, "SEDNA_WAIT=false", "SEDNA_GM_ADDRESS=10.0.0.5:30900",
		"SEDNA_GM_TLS_CERT="+filepath.Join(byo, "tls.crt"), "SEDNA_GM_TLS_KEY="+filepath.Join(byo, "tls.key"),
		"SEDNA_GM_CA_FILE="+filepath.Join(byo, "ca.crt"))
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "does not name 10.0.0.5 of SEDNA_GM_ADDRESS")
	live, err := kube.CoreV1().Secrets(ns).Get(ctx, "sedna-gm-tls", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, withIP.Data["tls.crt"], live.Data["tls.crt"], "a refused certificate replaced the live one")

	// A user's Sedna object stops delete from removing the CRDs (which would delete it).
	sedna, err := sednaclientset.NewForConfig(cluster.Config)
	require.NoError(t, err)
	ds := &sednav1.Dataset{ObjectMeta: metav1.ObjectMeta{Name: "users-data", Namespace: "bystander"},
		Spec: sednav1.DatasetSpec{URL: "/data/train.txt", Format: "txt", NodeName: "edge-node-1"}}
	_, err = sedna.SednaV1alpha1().Datasets("bystander").Create(ctx, ds, metav1.CreateOptions{})
	require.NoError(t, err)
	out, code = e.run(ctx, "SEDNA_ACTION=delete")
	require.NotEqual(t, 0, code, "delete should refuse while a Sedna object exists:\n%s", out)
	require.Contains(t, out, "Dataset/bystander/users-data")
	_, err = sedna.SednaV1alpha1().Datasets("bystander").Get(ctx, "users-data", metav1.GetOptions{})
	require.NoError(t, err, "the refused delete removed the user's Dataset")
	require.NoError(t, sedna.SednaV1alpha1().Datasets("bystander").Delete(ctx, "users-data", metav1.DeleteOptions{}))

	// The nodes here have no kubelet: a pod bound to a node stays Terminating until its kubelet
	// confirms it stopped (which would keep namespace sedna from going). Do what a kubelet does
	// once the containers are gone: delete the terminating pods with grace period 0.
	stopKubelets := standInKubelets(ctx, kube)
	defer stopKubelets()
	out, code = e.run(ctx, "SEDNA_ACTION=delete")
	require.Equal(t, 0, code, out)
	// Deleting again finds nothing to do.
	out, code = e.run(ctx, "SEDNA_ACTION=delete")
	require.Equal(t, 0, code, out)

	// Pods of the deleted workloads go with the garbage collector; wait until the cluster holds
	// exactly what it held before install.
	var added, removed []string
	deadline := time.Now().Add(eventually)
	for {
		after := e.snapshot(ctx)
		added, removed = diff(after, before), diff(before, after)
		if (len(added) == 0 && len(removed) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	require.Empty(t, added, "objects left behind after delete")
	require.Empty(t, removed, "objects that existed before install and are gone")
	_, err = kube.CoreV1().ConfigMaps("bystander").Get(ctx, "mine", metav1.GetOptions{})
	require.NoError(t, err)
	_, err = kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "namespace sedna should be gone: %v", err)
	t.Logf("after delete: %d objects in the cluster, the same as before install", len(before))
}

// standInKubelets deletes, with grace period 0, every pod that is being deleted, as the kubelet of
// its node does once its containers stopped; it returns a function that stops it.
func standInKubelets(ctx context.Context, kube kubernetes.Interface) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			pods, err := kube.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err == nil {
				for _, p := range pods.Items {
					if p.DeletionTimestamp != nil {
						_ = kube.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))})
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func ptr[T any](v T) *T { return &v }

func diff(a, b map[objectKey]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, string(k))
		}
	}
	sort.Strings(out)
	return out
}

// podsOn lists the nodes the selected pods in namespace sedna are scheduled on, sorted.
func podsOn(ctx context.Context, kube kubernetes.Interface, selector string) string {
	pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return err.Error()
	}
	var nodes []string
	for _, p := range pods.Items {
		nodes = append(nodes, p.Spec.NodeName)
	}
	sort.Strings(nodes)
	return strings.Join(nodes, ",")
}

func verifyServing(t *testing.T, certPEM []byte, caPEM string) {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	require.NotNil(t, block, "tls.crt holds no PEM block")
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(caPEM)), "ca.crt holds no certificate")
	for _, name := range []string{"gm.sedna", "gm.sedna.svc", "gm.sedna.svc.cluster.local"} {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		require.NoError(t, err, "GM's certificate for %s", name)
	}
}

// verifyServingIP checks that certPEM is a serving certificate for ip, verified by caPEM.
func verifyServingIP(t *testing.T, certPEM []byte, caPEM, ip string) {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	require.NotNil(t, block, "tls.crt holds no PEM block")
	cert, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(caPEM)), "ca.crt holds no certificate")
	_, err = cert.Verify(x509.VerifyOptions{DNSName: ip, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	require.NoError(t, err, "GM's certificate for %s", ip)
}

// envValue is the literal value of the environment variable name, "" if absent.
func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// requireSubset checks that every field the manifest sets has the manifest's value in the cluster
// (the server adds defaults, which are not compared).
func requireSubset(t *testing.T, want, got any, path string) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, "%s: want an object, got %T", path, got)
		for k, v := range w {
			requireSubset(t, v, g[k], path+"."+k)
		}
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, "%s: want a list, got %T", path, got)
		require.Len(t, g, len(w), path)
		for i := range w {
			requireSubset(t, w[i], g[i], fmt.Sprintf("%s[%d]", path, i))
		}
	case int64, float64:
		require.Equal(t, fmt.Sprint(want), fmt.Sprint(got), path)
	default:
		require.Equal(t, want, got, path)
	}
}
