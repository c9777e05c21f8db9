package main

import (
	"bytes"
	"compress/gzip"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// helm is the Helm binary hack/verify-chart.sh builds (hack/install-helm.sh) and passes in.
func helm(t *testing.T) string {
	t.Helper()
	h := os.Getenv("SEDNA_HELM")
	if h == "" {
		t.Skip("SEDNA_HELM is not set: hack/verify-chart.sh runs this test with the Helm it builds")
	}
	return h
}

const root = "../.."

func render(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	cmd := exec.Command(helm(t), append([]string{"template", "sedna", filepath.Join(root, "charts", "sedna"), "--namespace", "sedna", "--kube-version", "v1.37.2"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr.String())
	}
	return decodeAll(t, out)
}

func decodeAll(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		obj := map[string]any{}
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(obj) > 0 {
			objs = append(objs, normalize(t, obj))
		}
	}
}

// normalize makes GM's configuration comparable: its text is parsed, so formatting and comments do
// not count, only what GM reads.
func normalize(t *testing.T, obj map[string]any) map[string]any {
	if obj["kind"] == "ConfigMap" {
		if data, ok := obj["data"].(map[string]any); ok {
			if text, ok := data["gm.yaml"].(string); ok {
				cfg := map[string]any{}
				if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
					t.Fatalf("gm.yaml: %v", err)
				}
				data["gm.yaml"] = cfg
			}
		}
	}
	return obj
}

func keyOf(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	ns, _ := meta["namespace"].(string)
	return obj["kind"].(string) + " " + ns + "/" + meta["name"].(string)
}

func buildObjects(t *testing.T, dirs ...string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, d := range dirs {
		files, err := filepath.Glob(filepath.Join(root, "build", d, "*.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range decodeAll(t, data) {
				out[keyOf(o)] = o
			}
		}
	}
	return out
}

// TestChartDefaultsAreBuild: rendered with its defaults, the chart is build/ object for object (GM,
// LC, KB; with --include-crds the 11 CRDs, without their schemas' descriptions), plus only the
// generated certificate and tokens.
func TestChartDefaultsAreBuild(t *testing.T) {
	rendered := map[string]map[string]any{}
	for _, o := range render(t, "--include-crds") {
		rendered[keyOf(o)] = o
	}
	want := buildObjects(t, "crds", "gm", "lc", "kb")
	for _, o := range want {
		if o["kind"] == "CustomResourceDefinition" {
			stripDescriptions(o, false)
		}
	}
	for k, w := range want {
		got, ok := rendered[k]
		if !ok {
			t.Errorf("%s of build/ is not in the chart", k)
			continue
		}
		if !reflect.DeepEqual(w, got) {
			wy, _ := yaml.Marshal(w)
			gy, _ := yaml.Marshal(got)
			t.Errorf("%s differs from build/:\nbuild:\n%s\nchart:\n%s", k, wy, gy)
		}
		delete(rendered, k)
	}
	extra := map[string]bool{"Secret sedna/sedna-gm-tls": true, "ConfigMap sedna/sedna-gm-ca": true}
	if _, ok := want["Deployment sedna/sedna-kb"]; ok {
		extra["Secret sedna/sedna-kb-token"] = true
	}
	for k := range rendered {
		if !extra[k] {
			t.Errorf("the chart renders %s, which build/ does not have", k)
		}
		delete(extra, k)
	}
	for k := range extra {
		t.Errorf("the chart does not render %s", k)
	}
}

// TestChartCertificates: GM's certificate verifies against the CA the LCs trust for every name LCs
// dial, and no ConfigMap carries a private key.
func TestChartCertificates(t *testing.T) {
	var crt, bundle string
	for _, o := range render(t) {
		switch keyOf(o) {
		case "Secret sedna/sedna-gm-tls":
			data := o["data"].(map[string]any)
			b, err := base64.StdEncoding.DecodeString(data["tls.crt"].(string))
			if err != nil {
				t.Fatal(err)
			}
			crt = string(b)
			if o["type"] != "kubernetes.io/tls" {
				t.Errorf("sedna-gm-tls type %v", o["type"])
			}
		case "ConfigMap sedna/sedna-gm-ca":
			bundle = o["data"].(map[string]any)["ca.crt"].(string)
		}
		if o["kind"] == "ConfigMap" {
			if y, _ := yaml.Marshal(o); strings.Contains(string(y), "PRIVATE KEY") {
				t.Errorf("%s holds a private key", keyOf(o))
			}
		}
	}
	block, _ := pem.Decode([]byte(crt))
	if block == nil {
		t.Fatalf("no certificate in sedna-gm-tls")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(bundle)) {
		t.Fatalf("no CA in sedna-gm-ca: %q", bundle)
	}
	for _, name := range []string{"gm.sedna", "gm.sedna.svc", "gm.sedna.svc.cluster.local"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
			t.Errorf("GM's certificate for %s: %v", name, err)
		}
	}
	for _, o := range render(t, "--set", "certificates.generate=false") {
		if k := keyOf(o); k == "Secret sedna/sedna-gm-tls" || k == "ConfigMap sedna/sedna-gm-ca" {
			t.Errorf("certificates.generate=false still renders %s", k)
		}
	}
}

// TestChartValues: the values change what they say and nothing else.
func TestChartValues(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	objs := render(t,
		"--set", "image.repository=registry.local:5000/sedna",
		"--set", "image.tag=v9.9.9",
		"--set", "image.digests.sedna-gm="+digest,
		"--set", "gm.replicas=3",
		"--set", "gm.logLevel=4",
		"--set", "gm.nodeSelector.zone=cloud",
		"--set", "gm.config.kubeAPI.eventQPS=7",
		"--set", "lc.resources.limits.memory=512Mi",
		"--set", "lc.nodeSelector.sedna=yes",
		// Not a value: the knowledge base has one writer, and a second replica would be a second.
		"--set", "kb.replicas=3",
	)
	byKey := map[string]map[string]any{}
	for _, o := range objs {
		byKey[keyOf(o)] = o
	}
	podSpec := func(k string) map[string]any {
		o, ok := byKey[k]
		if !ok {
			t.Fatalf("%s not rendered", k)
		}
		return o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	}
	container := func(k string) map[string]any {
		return podSpec(k)["containers"].([]any)[0].(map[string]any)
	}
	gm := byKey["Deployment sedna/sedna-gm"]
	if r := gm["spec"].(map[string]any)["replicas"]; r != float64(3) {
		t.Errorf("gm replicas %v (%T)", r, r)
	}
	if r := byKey["Deployment sedna/sedna-kb"]["spec"].(map[string]any)["replicas"]; r != float64(1) {
		t.Errorf("kb replicas %v (%T), want 1 whatever the values say", r, r)
	}
	if got, want := container("Deployment sedna/sedna-gm")["image"], "registry.local:5000/sedna/sedna-gm@"+digest; got != want {
		t.Errorf("gm image %v, want %s", got, want)
	}
	if got := container("Deployment sedna/sedna-gm")["args"].([]any); got[len(got)-1] != "-v=4" {
		t.Errorf("gm args %v", got)
	}
	if got := podSpec("Deployment sedna/sedna-gm")["nodeSelector"]; !reflect.DeepEqual(got, map[string]any{"zone": "cloud"}) {
		t.Errorf("gm nodeSelector %v", got)
	}
	if got, want := container("DaemonSet sedna/sedna-lc")["image"], "registry.local:5000/sedna/sedna-lc:v9.9.9"; got != want {
		t.Errorf("lc image %v, want %s", got, want)
	}
	if got := container("DaemonSet sedna/sedna-lc")["resources"].(map[string]any)["limits"]; !reflect.DeepEqual(got, map[string]any{"memory": "512Mi"}) {
		t.Errorf("lc limits %v", got)
	}
	if got := podSpec("DaemonSet sedna/sedna-lc")["nodeSelector"]; !reflect.DeepEqual(got, map[string]any{"sedna": "yes"}) {
		t.Errorf("lc nodeSelector %v", got)
	}
	// The edge affinity stays: values add to node selection, they do not put GM on edge nodes.
	if aff := podSpec("Deployment sedna/sedna-gm")["affinity"]; !strings.Contains(mustYAML(t, aff), "DoesNotExist") {
		t.Errorf("gm lost its edge anti-affinity: %v", aff)
	}
	cfg := byKey["ConfigMap sedna/sedna-gm-config"]["data"].(map[string]any)["gm.yaml"].(map[string]any)
	api := cfg["kubeAPI"].(map[string]any)
	if api["eventQPS"] != float64(7) || api["eventBurst"] != float64(100) {
		t.Errorf("gm config kubeAPI %v: one key set, the others kept", api)
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestChartGMAddress: lc.gmAddress (install.sh's SEDNA_GM_ADDRESS) sets the LCs' GM_ADDRESS, GM's
// generated certificate names its host (a DNS name as a name, an IP as an IP) besides the gm
// Service's names, and an address that is not host:port fails the render naming the value.
func TestChartGMAddress(t *testing.T) {
	for _, tc := range []struct{ addr, dnsName, ip string }{
		{addr: "10.0.0.10:30900", ip: "10.0.0.10"},
		{addr: "[fd00::10]:30900", ip: "fd00::10"},
		{addr: "gm.example.com:443", dnsName: "gm.example.com"},
	} {
		objs := render(t, "--set", "lc.gmAddress="+tc.addr)
		var env []any
		var crt, bundle string
		for _, o := range objs {
			switch keyOf(o) {
			case "DaemonSet sedna/sedna-lc":
				spec := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
				env = spec["containers"].([]any)[0].(map[string]any)["env"].([]any)
			case "Secret sedna/sedna-gm-tls":
				b, err := base64.StdEncoding.DecodeString(o["data"].(map[string]any)["tls.crt"].(string))
				if err != nil {
					t.Fatal(err)
				}
				crt = string(b)
			case "ConfigMap sedna/sedna-gm-ca":
				bundle = o["data"].(map[string]any)["ca.crt"].(string)
			}
		}
		got := ""
		for _, e := range env {
			if e := e.(map[string]any); e["name"] == "GM_ADDRESS" {
				got, _ = e["value"].(string)
			}
		}
		if got != tc.addr {
			t.Errorf("lc.gmAddress=%s: the LCs' GM_ADDRESS is %q", tc.addr, got)
		}
		block, _ := pem.Decode([]byte(crt))
		if block == nil {
			t.Fatalf("lc.gmAddress=%s: no certificate in sedna-gm-tls", tc.addr)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(bundle)) {
			t.Fatalf("no CA in sedna-gm-ca: %q", bundle)
		}
		names := []string{"gm.sedna", "gm.sedna.svc", "gm.sedna.svc.cluster.local"}
		if tc.dnsName != "" {
			names = append(names, tc.dnsName)
		}
		if tc.ip != "" {
			names = append(names, tc.ip) // Verify checks an IP against the IP SANs
			if len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != tc.ip {
				t.Errorf("lc.gmAddress=%s: IP SANs %v", tc.addr, cert.IPAddresses)
			}
			for _, n := range cert.DNSNames {
				if n == tc.ip {
					t.Errorf("lc.gmAddress=%s: the IP is a DNS name of the certificate", tc.addr)
				}
			}
		}
		for _, name := range names {
			if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
				t.Errorf("lc.gmAddress=%s: GM's certificate for %s: %v", tc.addr, name, err)
			}
		}
	}
	for _, bad := range []string{"https://gm.example.com:443", "gm.example.com", "10.0.0.10:", "fd00::10:30900", ""} {
		cmd := exec.Command(helm(t), "template", "sedna", filepath.Join(root, "charts", "sedna"), "--namespace", "sedna",
			"--kube-version", "v1.37.2", "--set-string", "lc.gmAddress="+bad)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("lc.gmAddress=%q rendered", bad)
			continue
		}
		if !strings.Contains(string(out), "lc.gmAddress") {
			t.Errorf("lc.gmAddress=%q: the error does not name the value:\n%s", bad, out)
		}
	}
}

// TestStripDescriptions: schema descriptions go, a field named description stays (with its own
// description removed), nothing else changes.
func TestStripDescriptions(t *testing.T) {
	schema := map[string]any{}
	if err := yaml.Unmarshal([]byte(`
description: a Model
type: object
properties:
  description:
    description: the field named description
    type: string
  spec:
    description: the spec
    type: object
    patternProperties:
      "^x":
        description: x
        type: string
    items:
      description: an item
      type: string
`), &schema); err != nil {
		t.Fatal(err)
	}
	stripDescriptions(schema, false)
	want := map[string]any{}
	if err := yaml.Unmarshal([]byte(`
type: object
properties:
  description:
    type: string
  spec:
    type: object
    patternProperties:
      "^x":
        type: string
    items:
      type: string
`), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, schema) {
		t.Errorf("got %v, want %v", schema, want)
	}
}

// TestChartFitsInARelease: Helm stores the chart, crds/ included, gzip-compressed and base64-encoded
// in the release's Secret, which may hold at most 1 MiB. The real check is helm install against a
// real API server (test/integration/install, TestUpgradeHelmFromPrevious); this one names the cause.
func TestChartFitsInARelease(t *testing.T) {
	var raw bytes.Buffer
	err := filepath.Walk(filepath.Join(root, "charts", "sedna"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		// The release's JSON carries every file base64-encoded.
		raw.WriteString(base64.StdEncoding.EncodeToString(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write(raw.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	stored := base64.StdEncoding.EncodedLen(gz.Len())
	t.Logf("chart files %d bytes base64, the release Secret's value about %d bytes", raw.Len(), stored)
	if stored > 1<<20*3/4 {
		t.Errorf("the chart would take about %d bytes of the release Secret (at most 1 MiB, and the rendered manifest and values go there too)", stored)
	}
}
