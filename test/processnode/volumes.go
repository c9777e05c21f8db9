package processnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

const (
	// defaultFileMode is the API's default for configMap, secret, downwardAPI and projected volumes.
	defaultFileMode os.FileMode = 0o644
	// tokenFileMode is the kubelet's mode for a service-account token when the pod has a
	// runAsUser all its containers share, or an fsGroup: private to that user (and, with fsGroup,
	// readable by the group).
	tokenFileMode os.FileMode = 0o600
	// defaultTokenExpirationSeconds is the API's default for serviceAccountToken projections.
	defaultTokenExpirationSeconds int64 = 3600
	// maxTokenAge is when the kubelet refreshes a token however long it is valid: extended
	// tokens (kube-api-access volumes) last a year.
	maxTokenAge = 24 * time.Hour
	// maxTokenRetry bounds the wait before retrying a failed token refresh.
	maxTokenRetry = 10 * time.Second
)

// TokenSource mints service-account tokens bound to a pod, as the kubelet does for projected
// serviceAccountToken volumes.
type TokenSource interface {
	// CreateToken returns a token for the pod's service account (spec.serviceAccountName, or
	// "default"), bound to the pod. An empty audience means the API server's default audiences.
	CreateToken(ctx context.Context, pod *corev1.Pod, audience string, expirationSeconds int64) (token string, expiry time.Time, err error)
}

// volumeFile is one file the kubelet would write into a volume.
type volumeFile struct {
	path     string // relative to the volume's directory
	data     []byte
	mode     os.FileMode
	uid, gid int // owner; -1 keeps the harness's
}

// projectedToken is a serviceAccountToken file, minted again before it expires.
type projectedToken struct {
	volume, path      string // the volume's name, and the file relative to its directory
	dir               string // the volume's directory
	audience          string
	expirationSeconds int64
	issued, expiry    time.Time
	mode              os.FileMode
	uid, gid          int
}

// refreshAt is when the kubelet would mint the token again: once 80% of its lifetime has passed,
// or after a day.
func (t *projectedToken) refreshAt() time.Time {
	lifetime := t.expiry.Sub(t.issued)
	return t.issued.Add(min(lifetime*8/10, maxTokenAge))
}

// podVolumeDir is where the kubelet-written volumes of this pod live.
func (p *RunningPod) podVolumeDir(name string) string {
	return filepath.Join(p.opts.NodeRoot, "pods", string(p.pod.UID), "volumes", name)
}

// setUpVolumes maps each volume to a directory on this machine and writes the files of the
// volumes whose content the kubelet materialises (configMap, secret, downwardAPI, projected). It
// returns the tokens to refresh; none of them is refreshed yet, so a failed setup can be retried.
func (p *RunningPod) setUpVolumes(ctx context.Context) (map[string]string, []*projectedToken, error) {
	paths := map[string]string{}
	var tokens []*projectedToken
	fsGroup := fsGroupOf(p.pod)
	for _, v := range p.pod.Spec.Volumes {
		dir := p.podVolumeDir(v.Name)
		var files []volumeFile
		var err error
		// Which volumes the kubelet gives to the fsGroup: emptyDir, local PersistentVolumes and
		// the ones it writes (read-only); never hostPath, nor a hostPath PersistentVolume.
		ownedByFSGroup, readOnly := false, false
		switch {
		case v.HostPath != nil:
			dir = filepath.Join(p.opts.NodeRoot, "host", filepath.Clean("/"+v.HostPath.Path))
		case v.PersistentVolumeClaim != nil:
			var hostPath string
			hostPath, ownedByFSGroup, err = p.claimHostPath(v.PersistentVolumeClaim.ClaimName)
			dir = filepath.Join(p.opts.NodeRoot, "host", filepath.Clean("/"+hostPath))
		case v.EmptyDir != nil:
			ownedByFSGroup = true
		case v.ConfigMap != nil:
			s := v.ConfigMap
			files, err = p.configMapFiles(s.Name, s.Items, fileMode(s.DefaultMode), s.Optional)
		case v.Secret != nil:
			s := v.Secret
			files, err = p.secretFiles(s.SecretName, s.Items, fileMode(s.DefaultMode), s.Optional)
		case v.DownwardAPI != nil:
			files, err = p.downwardAPIFiles(v.DownwardAPI.Items, fileMode(v.DownwardAPI.DefaultMode))
		case v.Projected != nil:
			var minted []*projectedToken
			files, minted, err = p.projectedFiles(ctx, v.Name, dir, v.Projected)
			tokens = append(tokens, minted...)
		default:
			continue // other volume types are not run by this harness; their mounts stay unmapped
		}
		if err != nil {
			return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			ownedByFSGroup, readOnly = true, true
		}
		if v.PersistentVolumeClaim != nil && ownedByFSGroup {
			// A local PersistentVolume is a directory an administrator made: the kubelet refuses
			// to mount one that does not exist.
			if _, err := os.Stat(dir); err != nil {
				return nil, nil, fmt.Errorf("volume %s: the local PersistentVolume's path: %w", v.Name, err)
			}
		}
		// A hostPath the node lacks is created root:root 0755 (by the kubelet for
		// DirectoryOrCreate, by the runtime otherwise): this harness runs as root to be faithful.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if v.EmptyDir != nil {
			// The kubelet makes emptyDirs world-writable.
			if err := os.Chmod(dir, 0o777); err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		for _, f := range files {
			if err := writeFileAtomic(dir, f.path, f.data, f.mode, f.uid, f.gid); err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		if ownedByFSGroup && fsGroup != nil && canDropPrivileges() {
			if err := applyFSGroup(dir, *fsGroup, readOnly); err != nil {
				return nil, nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
		paths[v.Name] = dir
	}
	return paths, tokens, nil
}

// ClaimSource reads PersistentVolumeClaims and PersistentVolumes, for persistentVolumeClaim
// volumes. An ObjectSource that is not one runs no such volume.
type ClaimSource interface {
	PersistentVolumeClaim(namespace, name string) (*corev1.PersistentVolumeClaim, error)
	PersistentVolume(name string) (*corev1.PersistentVolume, error)
}

// claimHostPath resolves a persistentVolumeClaim volume as the kubelet does for node-local
// volumes: the claim must be Bound, and its PersistentVolume's hostPath or local path on this node
// is the volume. A claim that is not bound yet, or a volume of another type, holds the pod back
// (the caller retries, as for a missing Secret).
//
// local says whether the volume is a local PersistentVolume, which the kubelet gives to the pod's
// fsGroup (a hostPath one it does not).
func (p *RunningPod) claimHostPath(claimName string) (path string, local bool, err error) {
	claims, ok := p.opts.Objects.(ClaimSource)
	if !ok {
		return "", false, fmt.Errorf("persistentVolumeClaim %s: no claim source is configured", claimName)
	}
	claim, err := claims.PersistentVolumeClaim(p.pod.Namespace, claimName)
	if err != nil {
		return "", false, fmt.Errorf("persistentVolumeClaim %s: %w", claimName, err)
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName == "" {
		return "", false, fmt.Errorf("persistentVolumeClaim %s is not bound (phase %q)", claimName, claim.Status.Phase)
	}
	volume, err := claims.PersistentVolume(claim.Spec.VolumeName)
	if err != nil {
		return "", false, fmt.Errorf("persistentVolumeClaim %s: %w", claimName, err)
	}
	if ref := volume.Spec.ClaimRef; ref == nil || ref.UID != claim.UID {
		return "", false, fmt.Errorf("persistentVolumeClaim %s: persistentVolume %s is not bound to it", claimName, volume.Name)
	}
	switch {
	case volume.Spec.HostPath != nil:
		return volume.Spec.HostPath.Path, false, nil
	case volume.Spec.Local != nil:
		return volume.Spec.Local.Path, true, nil
	default:
		return "", false, fmt.Errorf("persistentVolumeClaim %s: persistentVolume %s is neither hostPath nor local, which this harness does not run", claimName, volume.Name)
	}
}

func fileMode(mode *int32) os.FileMode {
	if mode == nil {
		return defaultFileMode
	}
	return os.FileMode(*mode) & os.ModePerm
}

// keyFiles turns an object's keys into files: every key, or only items with their paths and modes.
// A missing item key is an error unless the object is optional.
func keyFiles(kind, name string, data map[string][]byte, items []corev1.KeyToPath, mode os.FileMode, optional *bool) ([]volumeFile, error) {
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		files := make([]volumeFile, 0, len(keys))
		for _, k := range keys {
			files = append(files, volumeFile{path: k, data: data[k], mode: mode, uid: -1, gid: -1})
		}
		return files, nil
	}
	files := make([]volumeFile, 0, len(items))
	for _, item := range items {
		value, ok := data[item.Key]
		if !ok {
			if isOptional(optional) {
				continue
			}
			return nil, fmt.Errorf("%s %s has no key %s", kind, name, item.Key)
		}
		itemMode := mode
		if item.Mode != nil {
			itemMode = os.FileMode(*item.Mode) & os.ModePerm
		}
		files = append(files, volumeFile{path: item.Path, data: value, mode: itemMode, uid: -1, gid: -1})
	}
	return files, nil
}

func (p *RunningPod) configMapFiles(name string, items []corev1.KeyToPath, mode os.FileMode, optional *bool) ([]volumeFile, error) {
	if p.opts.Objects == nil {
		return nil, fmt.Errorf("configMap %s: no object source is configured", name)
	}
	cm, err := p.opts.Objects.ConfigMap(p.pod.Namespace, name)
	if err != nil {
		if isOptional(optional) {
			return nil, nil
		}
		return nil, fmt.Errorf("configMap %s: %w", name, err)
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return keyFiles("configMap", name, data, items, mode, optional)
}

func (p *RunningPod) secretFiles(name string, items []corev1.KeyToPath, mode os.FileMode, optional *bool) ([]volumeFile, error) {
	if p.opts.Objects == nil {
		return nil, fmt.Errorf("secret %s: no object source is configured", name)
	}
	secret, err := p.opts.Objects.Secret(p.pod.Namespace, name)
	if err != nil {
		if isOptional(optional) {
			return nil, nil
		}
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return keyFiles("secret", name, secret.Data, items, mode, optional)
}

// downwardAPIFiles writes fieldRefs; the whole label and annotation sets are written as the
// kubelet does, one key="value" line each.
func (p *RunningPod) downwardAPIFiles(items []corev1.DownwardAPIVolumeFile, mode os.FileMode) ([]volumeFile, error) {
	files := make([]volumeFile, 0, len(items))
	for _, item := range items {
		if item.FieldRef == nil {
			return nil, fmt.Errorf("downwardAPI %s: only fieldRef is supported (resourceFieldRef is not run by this harness)", item.Path)
		}
		var value string
		switch path := item.FieldRef.FieldPath; path {
		case "metadata.labels":
			value = formatMap(p.pod.Labels)
		case "metadata.annotations":
			value = formatMap(p.pod.Annotations)
		default:
			var err error
			if value, err = fieldValue(p.pod, path); err != nil {
				return nil, fmt.Errorf("downwardAPI %s: %w", item.Path, err)
			}
		}
		itemMode := mode
		if item.Mode != nil {
			itemMode = os.FileMode(*item.Mode) & os.ModePerm
		}
		files = append(files, volumeFile{path: item.Path, data: []byte(value), mode: itemMode, uid: -1, gid: -1})
	}
	return files, nil
}

func formatMap(m map[string]string) string {
	lines := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		lines = append(lines, k+"="+strconv.Quote(m[k]))
	}
	return strings.Join(lines, "\n")
}

// projectedFiles gathers the files of every source of a projected volume, minting its tokens.
func (p *RunningPod) projectedFiles(ctx context.Context, volume, dir string, projected *corev1.ProjectedVolumeSource) ([]volumeFile, []*projectedToken, error) {
	mode := fileMode(projected.DefaultMode)
	var files []volumeFile
	var tokens []*projectedToken
	for _, source := range projected.Sources {
		var sourceFiles []volumeFile
		var err error
		switch {
		case source.ConfigMap != nil:
			s := source.ConfigMap
			sourceFiles, err = p.configMapFiles(s.Name, s.Items, mode, s.Optional)
		case source.Secret != nil:
			s := source.Secret
			sourceFiles, err = p.secretFiles(s.Name, s.Items, mode, s.Optional)
		case source.DownwardAPI != nil:
			sourceFiles, err = p.downwardAPIFiles(source.DownwardAPI.Items, mode)
		case source.ServiceAccountToken != nil:
			var token *projectedToken
			var data string
			token, data, err = p.mintToken(ctx, volume, dir, source.ServiceAccountToken)
			if err == nil {
				// The kubelet's rule: the projection's mode, but private (0600, owned by the
				// pods' common runAsUser, group-readable for the fsGroup) when either is set.
				token.mode, token.uid, token.gid = mode, -1, -1
				user, group := fsUser(p.pod), fsGroupOf(p.pod)
				if user != nil || group != nil {
					token.mode = tokenFileMode
				}
				if canDropPrivileges() && user != nil {
					token.uid = int(*user)
				}
				if canDropPrivileges() && group != nil {
					token.gid, token.mode = int(*group), token.mode|0o040
				}
				tokens = append(tokens, token)
				sourceFiles = []volumeFile{{path: token.path, data: []byte(data), mode: token.mode, uid: token.uid, gid: token.gid}}
			}
		default:
			err = fmt.Errorf("unsupported projected source (only configMap, secret, downwardAPI and serviceAccountToken are run by this harness)")
		}
		if err != nil {
			return nil, nil, err
		}
		files = append(files, sourceFiles...)
	}
	return files, tokens, nil
}

func (p *RunningPod) mintToken(ctx context.Context, volume, dir string, source *corev1.ServiceAccountTokenProjection) (*projectedToken, string, error) {
	if p.opts.Tokens == nil {
		return nil, "", fmt.Errorf("serviceAccountToken %s: no token source is configured", source.Path)
	}
	expirationSeconds := defaultTokenExpirationSeconds
	if source.ExpirationSeconds != nil {
		expirationSeconds = *source.ExpirationSeconds
	}
	issued := time.Now()
	token, expiry, err := p.opts.Tokens.CreateToken(ctx, p.pod, source.Audience, expirationSeconds)
	if err != nil {
		return nil, "", fmt.Errorf("serviceAccountToken %s: %w", source.Path, err)
	}
	return &projectedToken{
		volume: volume, path: source.Path, dir: dir, audience: source.Audience,
		expirationSeconds: expirationSeconds, issued: issued, expiry: expiry,
	}, token, nil
}

// refreshToken mints the token again whenever 80% of its lifetime has passed, until ctx ends. A
// failed refresh is logged and retried while the old token is still valid, and after.
func (p *RunningPod) refreshToken(ctx context.Context, token *projectedToken) {
	logger := p.opts.Logger.WithValues("pod", klog.KObj(p.pod), "volume", token.volume, "path", token.path)
	next := token.refreshAt()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		issued := time.Now()
		data, expiry, err := p.opts.Tokens.CreateToken(ctx, p.pod, token.audience, token.expirationSeconds)
		if err == nil {
			err = writeFileAtomic(token.dir, token.path, []byte(data), token.mode, token.uid, token.gid)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			retry := min(max(time.Until(token.expiry)/4, 100*time.Millisecond), maxTokenRetry)
			logger.Error(err, "Refreshing a service-account token failed", "retryIn", retry)
			next = time.Now().Add(retry)
			continue
		}
		token.issued, token.expiry = issued, expiry
		next = token.refreshAt()
		logger.V(4).Info("Refreshed service-account token", "expiry", expiry)
	}
}

// writeFileAtomic writes dir/path through a temporary file renamed into place, so that a reader
// sees the old content or the new one, never a partial file.
// uid and gid, unless -1, become its owner.
func writeFileAtomic(dir, path string, data []byte, mode os.FileMode, uid, gid int) error {
	if !filepath.IsLocal(path) {
		return fmt.Errorf("path %q must be relative and stay inside the volume", path)
	}
	target := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), ".tmp-"+filepath.Base(target)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil && (uid >= 0 || gid >= 0) {
		err = os.Chown(tmp.Name(), uid, gid)
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		_ = os.Remove(tmp.Name()) // best effort: the error that matters is returned
		return fmt.Errorf("writing %s: %w", target, err)
	}
	return nil
}
