package workers

import (
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
)

const (
	// DefaultInitializerImage is the storage-initializer image (cmd/sedna-storage-initializer).
	DefaultInitializerImage = "kubeedge/sedna-storage-initializer:v0.7.0"
	// InitializerName is the init container that downloads remote models and datasets.
	InitializerName = "storage-initializer"
	// DownloadVolumeName is the emptyDir the initializer downloads into.
	DownloadVolumeName = "sedna-storage-initializer"
	// DownloadDir is where DownloadVolumeName is mounted: read-write in the initializer,
	// read-only in the workers.
	DownloadDir = "/downloads"
	// HostDataDir is where host paths are mounted in workers; the worker library strips it from
	// the URLs it reports (DATA_PATH_PREFIX) so that reports carry host paths again.
	HostDataDir = "/home/data"
	// EnvDataPathPrefix tells the worker library where host paths are mounted.
	EnvDataPathPrefix = "DATA_PATH_PREFIX"
	// Env names of the S3 credentials, read by the initializer and upstream's worker library.
	EnvS3Endpoint        = "S3_ENDPOINT_URL"
	EnvS3AccessKeyID     = "ACCESS_KEY_ID"
	EnvS3SecretAccessKey = "SECRET_ACCESS_KEY"

	defaultVolumeName = "sedna-default-volume-name"
)

// S3Credentials say how a pod reaches S3: the endpoint URL and the Secret holding the keys. The
// keys themselves never enter the pod spec; containers read them through secretKeyRef.
type S3Credentials struct {
	SecretName string
	// EndpointURL is "<http|https>://host[:port]".
	EndpointURL string
}

// S3CredentialsFromSecret checks a credentialName Secret (annotation s3-endpoint, optional
// s3-usehttps, data ACCESS_KEY_ID and SECRET_ACCESS_KEY, as upstream) and returns how pods use it.
func S3CredentialsFromSecret(secret *corev1.Secret) (*S3Credentials, error) {
	creds, err := storage.CredentialsFromSecret(secret.Annotations, secret.Data)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	scheme := "https"
	if !creds.UseHTTPS {
		scheme = "http"
	}
	return &S3Credentials{SecretName: secret.Name, EndpointURL: scheme + "://" + creds.Endpoint}, nil
}

// Env is S3_ENDPOINT_URL plus ACCESS_KEY_ID and SECRET_ACCESS_KEY taken from the Secret.
func (c *S3Credentials) Env() []corev1.EnvVar {
	fromSecret := func(key string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: c.SecretName}, Key: key,
		}}
	}
	return []corev1.EnvVar{
		{Name: EnvS3Endpoint, Value: c.EndpointURL},
		{Name: EnvS3AccessKeyID, ValueFrom: fromSecret(storage.DataAccessKeyID)},
		{Name: EnvS3SecretAccessKey, ValueFrom: fromSecret(storage.DataSecretAccessKey)},
	}
}

// Mount is a model or dataset location a worker reads, given to it in env EnvName.
type Mount struct {
	URL     string
	EnvName string
	// URLs, when set instead of URL, are several locations given in one env var, ";"-joined in
	// this order (upstream's MODEL_URLS); each is mounted or downloaded as URL would be.
	URLs []string
	// Credentials are used by the initializer for s3:// URLs; nil when the resource names none.
	Credentials *S3Credentials
	// Output marks a location the worker writes (upstream's "no download" mounts): a host path is
	// mounted from a parent directory created when missing (DirectoryOrCreate), and a remote URL
	// is given verbatim, with Credentials in the worker containers' env, instead of downloaded.
	Output bool
	// Source names the resource the URL comes from (e.g. `Model "ns/name"`) in errors.
	Source string
}

func (m Mount) sourceName() string {
	if m.Source == "" {
		return "write target"
	}
	return m.Source
}

// protectedHostDirs are the node's trees a worker must never get to write: a write target whose
// host directory is one of them, lies below one or contains one is refused ("/" contains them all).
var protectedHostDirs = []string{
	"/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
	"/libx32", "/var/lib/kubelet", "/var/run", "/run", "/var/lib/sedna",
}

// CheckWriteHostDir refuses a host directory a write target would mount read-write when it is
// "/", a system tree (protectedHostDirs) or an ancestor of one.
func CheckWriteHostDir(dir string) error {
	dir = path.Clean("/" + dir)
	if dir == "/" {
		return fmt.Errorf("a write target must not mount the node's root directory")
	}
	for _, p := range protectedHostDirs {
		if dir == p || strings.HasPrefix(dir, p+"/") || strings.HasPrefix(p, dir+"/") {
			return fmt.Errorf("a write target must not mount the node's system directory %q (%s)", dir, p)
		}
	}
	return nil
}

// Worker is what a feature wants in one worker's pods: the user's template, the env GM adds
// (appended after the user's env in every container, in this order) and the locations to mount.
type Worker struct {
	Template corev1.PodTemplateSpec
	Env      []corev1.EnvVar
	Mounts   []Mount
	// InitializerImage overrides DefaultInitializerImage.
	InitializerImage string
}

// mountPlan is how one URL reaches a worker.
type mountPlan struct {
	// value is what the worker's env holds.
	value string
	// hostDir is the host directory to mount (host paths).
	hostDir string
	// downloadTo is the directory the initializer downloads into (remote URLs).
	downloadTo string
}

// planMount applies upstream's Mount/URL table: host paths are mounted from their parent
// directory under /home/data; s3:// and http(s):// are downloaded below /downloads/<host><dir>;
// anything else (other schemes, model IDs) reaches the worker verbatim.
func planMount(raw string) (mountPlan, error) {
	if strings.HasPrefix(raw, "/") {
		if slices.Contains(strings.Split(raw, "/"), "..") {
			return mountPlan{}, fmt.Errorf("host path %q must not contain \"..\"", raw)
		}
		clean := path.Clean(raw)
		if strings.HasSuffix(raw, "/") && clean != "/" {
			clean += "/"
		}
		return mountPlan{value: HostDataDir + clean, hostDir: path.Dir(clean)}, nil
	}
	if !strings.Contains(raw, "://") {
		return mountPlan{value: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return mountPlan{}, fmt.Errorf("parsing URL %q: %w", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "s3", "http", "https":
	default:
		return mountPlan{value: raw}, nil
	}
	if u.Host == "" {
		return mountPlan{}, fmt.Errorf("URL %q has no host or bucket", raw)
	}
	if slices.Contains(strings.Split(u.Path, "/"), "..") {
		return mountPlan{}, fmt.Errorf("URL %q must not contain \"..\"", raw)
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	dir := path.Dir(p) // a file goes into its directory
	if strings.HasSuffix(p, "/") {
		dir = p // a tree (prefix) becomes the directory itself
	}
	return mountPlan{value: DownloadDir + "/" + u.Host + p, downloadTo: path.Join(DownloadDir, u.Host, dir)}, nil
}

// HostPathVolumeName is the RFC 1123 volume name of a host directory: lowercase, every other
// character a "-", no leading "-", a trailing "-" turned into "z", at most 63 characters (long
// paths keep a hash so that two of them cannot collide).
func HostPathVolumeName(dir string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(dir) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	name := strings.TrimLeft(b.String(), "-")
	if len(name) > 63 {
		hash, _ := SpecHash(dir) // hashing a string cannot fail
		name = strings.TrimRight(name[:52], "-") + "-" + hash[:10]
	}
	if strings.HasSuffix(name, "-") {
		name = name[:len(name)-1] + "z"
	}
	if name == "" {
		return defaultVolumeName
	}
	return name
}

// PodTemplate returns the worker's pod template: the user's template (deep-copied) with GM's env
// appended to every container, host paths mounted, and, when a URL has to be downloaded, the
// storage-initializer init container and its download volume.
func (w Worker) PodTemplate() (corev1.PodTemplateSpec, error) {
	template := *w.Template.DeepCopy()
	spec := &template.Spec

	env := slices.Clone(w.Env)
	var volumes []corev1.Volume
	var workerMounts []corev1.VolumeMount
	var initArgs []string
	var initCreds *S3Credentials
	mountedDirs := map[string]int{} // host dir → index in volumes
	var workerCreds *S3Credentials
	for _, m := range w.Mounts {
		urls := m.URLs
		if len(urls) == 0 {
			urls = []string{m.URL}
		}
		values := make([]string, 0, len(urls))
		for _, raw := range urls {
			plan, err := planMount(raw)
			if err != nil {
				return corev1.PodTemplateSpec{}, fmt.Errorf("%s: %w", m.EnvName, err)
			}
			if m.Output && plan.hostDir == "/" && plan.value != HostDataDir+"/" {
				// A write target right below "/" is a directory of its own: mounting its parent, as
				// a read location's, would give the worker the node's whole root filesystem to write.
				plan.hostDir = strings.TrimSuffix(strings.TrimPrefix(plan.value, HostDataDir), "/")
			}
			if m.Output && plan.hostDir != "" {
				if err := CheckWriteHostDir(plan.hostDir); err != nil {
					return corev1.PodTemplateSpec{}, fmt.Errorf("%s: %s url %q: %w", m.EnvName, m.sourceName(), raw, err)
				}
			}
			if m.Output && plan.downloadTo != "" {
				// A write target is not downloaded: the worker writes to the URL itself.
				plan = mountPlan{value: raw}
				if m.Credentials != nil {
					if workerCreds != nil && *workerCreds != *m.Credentials {
						return corev1.PodTemplateSpec{}, fmt.Errorf("%s: a worker can use only one S3 credential Secret, got %q and %q",
							m.EnvName, workerCreds.SecretName, m.Credentials.SecretName)
					}
					workerCreds = m.Credentials
				}
			}
			values = append(values, plan.value)
			switch {
			case plan.hostDir != "":
				if i, seen := mountedDirs[plan.hostDir]; seen {
					if m.Output {
						volumes[i].HostPath.Type = ptr.To(corev1.HostPathDirectoryOrCreate)
					}
					continue
				}
				mountedDirs[plan.hostDir] = len(volumes)
				hostPathType := corev1.HostPathDirectory
				if m.Output {
					hostPathType = corev1.HostPathDirectoryOrCreate
				}
				name := HostPathVolumeName(plan.hostDir)
				volumes = append(volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: plan.hostDir, Type: ptr.To(hostPathType)},
				}})
				workerMounts = append(workerMounts, corev1.VolumeMount{Name: name, MountPath: path.Join(HostDataDir, plan.hostDir)})
			case plan.downloadTo != "":
				initArgs = append(initArgs, raw, plan.downloadTo)
				if m.Credentials == nil {
					continue
				}
				if initCreds != nil && *initCreds != *m.Credentials {
					return corev1.PodTemplateSpec{}, fmt.Errorf("%s: the initializer can use only one S3 credential Secret per pod, got %q and %q",
						m.EnvName, initCreds.SecretName, m.Credentials.SecretName)
				}
				initCreds = m.Credentials
			}
		}
		env = append(env, corev1.EnvVar{Name: m.EnvName, Value: strings.Join(values, ";")})
	}
	if len(mountedDirs) > 0 {
		env = append(env, corev1.EnvVar{Name: EnvDataPathPrefix, Value: HostDataDir})
	}
	if workerCreds != nil {
		env = append(env, workerCreds.Env()...)
	}
	if len(initArgs) > 0 {
		volumes = append(volumes, corev1.Volume{Name: DownloadVolumeName,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		workerMounts = append(workerMounts, corev1.VolumeMount{Name: DownloadVolumeName, MountPath: DownloadDir, ReadOnly: true})
		image := w.InitializerImage
		if image == "" {
			image = DefaultInitializerImage
		}
		initializer := corev1.Container{
			Name: InitializerName, Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Args: initArgs,
			// Upstream sets only the limits, which makes the requests 1 CPU and 1Gi too: too much to
			// reserve on small edge nodes for a download.
			Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")},
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("128Mi")},
			},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			VolumeMounts:             []corev1.VolumeMount{{Name: DownloadVolumeName, MountPath: DownloadDir}},
		}
		if initCreds != nil {
			initializer.Env = initCreds.Env()
		}
		// First, so that the user's own init containers already see the downloaded files.
		spec.InitContainers = append([]corev1.Container{initializer}, spec.InitContainers...)
	}
	spec.Volumes = append(spec.Volumes, volumes...)
	for i := range spec.Containers {
		container := &spec.Containers[i]
		for _, e := range env {
			container.Env = append(container.Env, *e.DeepCopy())
		}
		container.VolumeMounts = append(container.VolumeMounts, workerMounts...)
	}
	return template, nil
}

// HostIPEnv is an env var holding the node's IP from the downward API, for URLs such as the LC's
// that live on the node: "$(name)" in a later env var expands to it.
func HostIPEnv(name string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
		FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "status.hostIP"},
	}}
}
