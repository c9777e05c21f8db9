package main

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	gmconfig "github.com/sedna-go/sedna/pkg/globalmanager/config"
	"github.com/sedna-go/sedna/pkg/manifest"
	"github.com/sedna-go/sedna/pkg/sdk/env"
	"github.com/sedna-go/sedna/test/processnode"
)

// repoFile reads a file of the repository (this package is cmd/sedna-kb).
func repoFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(path)))
	require.NoError(t, err)
	return data
}

// shippedKB decodes build/kb/kb.yaml strictly.
func shippedKB(t *testing.T) (*corev1.PersistentVolumeClaim, *appsv1.Deployment, *corev1.Service) {
	t.Helper()
	objects, err := manifest.Decode(repoFile(t, "build/kb/kb.yaml"), scheme.Scheme)
	require.NoError(t, err)
	var (
		claim      *corev1.PersistentVolumeClaim
		deployment *appsv1.Deployment
		service    *corev1.Service
	)
	for _, object := range objects {
		switch typed := object.(type) {
		case *corev1.PersistentVolumeClaim:
			claim = typed
		case *appsv1.Deployment:
			deployment = typed
		case *corev1.Service:
			service = typed
		default:
			t.Fatalf("build/kb/kb.yaml: unexpected %T", object)
		}
	}
	require.Len(t, objects, 3)
	require.NotNil(t, claim)
	require.NotNil(t, deployment)
	require.NotNil(t, service)
	for _, meta := range []metav1.Object{claim, deployment, service} {
		require.Equal(t, "sedna", meta.GetNamespace(), meta.GetName())
	}
	return claim, deployment, service
}

// TestShippedManifestStartsTheServer resolves the environment of build/kb's container as a kubelet
// would (its token Secret as an administrator creates it) and parses it with the server's own
// configuration code: the server it describes listens on its pod's address at 9020, keeps its
// database on the claim, and refuses anonymous callers.
func TestShippedManifestStartsTheServer(t *testing.T) {
	claim, deployment, _ := shippedKB(t)
	spec := deployment.Spec.Template.Spec
	require.Len(t, spec.Containers, 1)
	container := spec.Containers[0]
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sedna-kb-token", Namespace: "sedna"},
		Data: map[string][]byte{"token": []byte("write"), "read-token": []byte("read")}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sedna-kb-0", Namespace: "sedna"}, Spec: spec,
		Status: corev1.PodStatus{PodIP: "10.1.2.3", HostIP: "192.168.0.2"}}
	_, resolved, err := processnode.ResolveEnv(pod, &container, secretSource{secret})
	require.NoError(t, err)
	cfg, err := parseConfig(container.Args, env.New(env.MapLookup(resolved)))
	require.NoError(t, err)
	require.Equal(t, "10.1.2.3:9020", cfg.bindAddr, "it listens on its pod's address")
	require.Equal(t, "write", cfg.options.WriteToken)
	require.Equal(t, "read", cfg.options.ReadToken)
	require.False(t, cfg.options.Compat, "the shipped server refuses requests without a token")

	// The database and the files are on the claim.
	var dataMount *corev1.VolumeMount
	for i := range container.VolumeMounts {
		if strings.HasPrefix(cfg.dataDir+"/", container.VolumeMounts[i].MountPath+"/") {
			dataMount = &container.VolumeMounts[i]
		}
	}
	require.NotNil(t, dataMount, "the data directory %s is on no volume", cfg.dataDir)
	require.True(t, strings.HasPrefix(cfg.files, dataMount.MountPath+"/"), "files %s", cfg.files)
	var claimed bool
	for _, v := range spec.Volumes {
		if v.Name == dataMount.Name {
			require.NotNil(t, v.PersistentVolumeClaim, "the data volume is a claim")
			require.Equal(t, claim.Name, v.PersistentVolumeClaim.ClaimName)
			claimed = true
		}
	}
	require.True(t, claimed)

	// Without its Secret the pod does not start, rather than running open.
	_, _, err = processnode.ResolveEnv(pod, &container, secretSource{})
	require.ErrorContains(t, err, "sedna-kb-token")
}

type secretSource struct{ secret *corev1.Secret }

func (s secretSource) Secret(_, name string) (*corev1.Secret, error) {
	if s.secret == nil || s.secret.Name != name {
		return nil, os.ErrNotExist
	}
	return s.secret, nil
}

func (secretSource) ConfigMap(_, name string) (*corev1.ConfigMap, error) { return nil, os.ErrNotExist }

// TestShippedManifestIsAHardenedSingleWriter: one replica replaced only after the old pod is gone
// (kb.db is a single-writer file on a ReadWriteOnce claim), on a cloud node, non-root, read-only
// root, probes on the health route, bounded resources.
func TestShippedManifestIsAHardenedSingleWriter(t *testing.T) {
	claim, deployment, _ := shippedKB(t)
	require.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, claim.Spec.AccessModes)
	require.False(t, claim.Spec.Resources.Requests.Storage().IsZero())
	require.NotNil(t, deployment.Spec.Replicas)
	require.EqualValues(t, 1, *deployment.Spec.Replicas)
	require.Equal(t, appsv1.RecreateDeploymentStrategyType, deployment.Spec.Strategy.Type)
	spec := deployment.Spec.Template.Spec
	terms := spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	require.Equal(t, corev1.NodeSelectorRequirement{Key: "node-role.kubernetes.io/edge", Operator: corev1.NodeSelectorOpDoesNotExist},
		terms[0].MatchExpressions[0], "the knowledge base runs in the cloud")
	require.False(t, *spec.AutomountServiceAccountToken)
	require.True(t, *spec.SecurityContext.RunAsNonRoot)
	require.NotZero(t, *spec.SecurityContext.RunAsUser)
	container := spec.Containers[0]
	require.False(t, *container.SecurityContext.AllowPrivilegeEscalation)
	require.True(t, *container.SecurityContext.ReadOnlyRootFilesystem)
	require.Equal(t, []corev1.Capability{"ALL"}, container.SecurityContext.Capabilities.Drop)
	for name, probe := range map[string]*corev1.Probe{"liveness": container.LivenessProbe, "readiness": container.ReadinessProbe} {
		require.NotNil(t, probe, name)
		require.Equal(t, "/healthz", probe.HTTPGet.Path, name)
		require.Equal(t, "kb", probe.HTTPGet.Port.String(), name)
	}
	require.Equal(t, []corev1.ContainerPort{{Name: "kb", ContainerPort: 9020, Protocol: corev1.ProtocolTCP}}, withProtocol(container.Ports))
	require.False(t, container.Resources.Requests.Cpu().IsZero())
	require.False(t, container.Resources.Limits.Memory().IsZero())
}

func withProtocol(ports []corev1.ContainerPort) []corev1.ContainerPort {
	out := append([]corev1.ContainerPort(nil), ports...)
	for i := range out {
		if out[i].Protocol == "" {
			out[i].Protocol = corev1.ProtocolTCP
		}
	}
	return out
}

// TestShippedPiecesAgree: GM's knowledgeBaseServer.server is the Service's name and port, its
// tokenSecret is the Secret the server reads its write token from, the LC's KB_SERVER is the same
// URL and its token file is that Secret's read token, and the image runs this binary on local
// Sedna's process nodes.
func TestShippedPiecesAgree(t *testing.T) {
	_, deployment, service := shippedKB(t)
	container := deployment.Spec.Template.Spec.Containers[0]
	secretKeys := map[string]string{} // env name -> secret/key
	for _, e := range container.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secretKeys[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	require.Equal(t, map[string]string{envToken: "sedna-kb-token/token", envReadToken: "sedna-kb-token/read-token"}, secretKeys)

	var cm corev1.ConfigMap
	require.NoError(t, yaml.UnmarshalStrict(repoFile(t, "build/gm/config.yaml"), &cm))
	var gm gmconfig.Config
	require.NoError(t, yaml.UnmarshalStrict([]byte(cm.Data["gm.yaml"]), &gm))
	require.Equal(t, "sedna-kb-token", gm.KnowledgeBaseServer.TokenSecret, "GM gives workers the server's write token")
	server, err := url.Parse(gm.KnowledgeBaseServer.Server)
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(server.Host)
	require.NoError(t, err)
	require.Equal(t, service.Name+"."+service.Namespace, host)
	require.Equal(t, "9020", port)
	require.EqualValues(t, 9020, service.Spec.Ports[0].Port)
	require.Equal(t, "kb", service.Spec.Ports[0].TargetPort.String())
	require.Equal(t, deployment.Spec.Selector.MatchLabels, service.Spec.Selector)

	objects, err := manifest.Decode(repoFile(t, "build/lc/daemonset.yaml"), scheme.Scheme)
	require.NoError(t, err)
	var lc *appsv1.DaemonSet
	for _, object := range objects {
		if ds, ok := object.(*appsv1.DaemonSet); ok {
			lc = ds
		}
	}
	require.NotNil(t, lc)
	lcContainer := lc.Spec.Template.Spec.Containers[0]
	kbServer := ""
	for _, e := range lcContainer.Env {
		if e.Name == "KB_SERVER" {
			kbServer = e.Value
		}
	}
	require.Equal(t, gm.KnowledgeBaseServer.Server, kbServer)
	tokenFile := ""
	for _, arg := range lcContainer.Args {
		if value, ok := strings.CutPrefix(arg, "--kb-token-file="); ok {
			tokenFile = value
		}
	}
	require.NotEmpty(t, tokenFile, "the LC presents a token to the knowledge base")
	found := false
	for _, mount := range lcContainer.VolumeMounts {
		if filepath.Dir(tokenFile) != mount.MountPath {
			continue
		}
		require.True(t, mount.ReadOnly)
		for _, v := range lc.Spec.Template.Spec.Volumes {
			if v.Name == mount.Name {
				require.NotNil(t, v.Secret)
				require.Equal(t, "sedna-kb-token", v.Secret.SecretName)
				require.Equal(t, []corev1.KeyToPath{{Key: "read-token", Path: filepath.Base(tokenFile)}}, v.Secret.Items,
					"the LC only downloads: it gets the read token")
				found = true
			}
		}
	}
	require.True(t, found, "no Secret volume holds %s", tokenFile)

	images, err := processnode.LoadImageTable(filepath.Join("..", "..", "hack", "local-up", "images.txt"), "/bin")
	require.NoError(t, err)
	binary, err := images.Binary(container.Image)
	require.NoError(t, err)
	require.Equal(t, "/bin/sedna-kb", binary)
}
