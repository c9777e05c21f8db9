package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// createAllFixtures creates one object of every kind in ns.
func createAllFixtures(t *testing.T, ns string) {
	t.Helper()
	for _, kc := range kindCases {
		_, err := controlPlane.Dynamic.Resource(kc.gvr()).Namespace(ns).Create(context.Background(),
			loadFixture(t, kc.fixture), metav1.CreateOptions{})
		require.NoError(t, err, kc.kind)
	}
}

// TestPrinterColumns asks the API server for the table `kubectl get` shows and checks each kind's
// columns and a value computed from the object.
func TestPrinterColumns(t *testing.T) {
	ns := newNamespace(t)
	createAllFixtures(t, ns)
	for _, kc := range kindCases {
		t.Run(kc.kind, func(t *testing.T) {
			raw, err := controlPlane.Sedna.SednaV1alpha1().RESTClient().Get().Namespace(ns).Resource(kc.plural).
				SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").
				Do(context.Background()).Raw()
			require.NoError(t, err)
			var table metav1.Table
			require.NoError(t, json.Unmarshal(raw, &table))
			var names []string
			for _, c := range table.ColumnDefinitions {
				names = append(names, c.Name)
			}
			require.Equal(t, kc.columns, names)
			require.Len(t, table.Rows, 1)
			require.Equal(t, "fixture-"+strings.ToLower(kc.kind), table.Rows[0].Cells[0])
		})
	}
	t.Run("values", func(t *testing.T) {
		out, err := controlPlane.Kubectl(context.Background(), "get", "datasets", "-n", ns, "--no-headers")
		require.NoError(t, err, out)
		dataset := loadFixture(t, "dataset.yaml")
		node := dataset.Object["spec"].(map[string]any)["nodeName"].(string)
		require.Regexp(t, fmt.Sprintf(`^fixture-dataset\s+%s\s+`, node), out)
	})
}

// TestKubectlGet runs kubectl as a user would: short names, the sedna category, all namespaces.
func TestKubectlGet(t *testing.T) {
	ns := newNamespace(t)
	createAllFixtures(t, ns)
	ctx := context.Background()

	out, err := controlPlane.Kubectl(ctx, "get", "ji,il,fl,ll", "-A")
	require.NoError(t, err, out)
	for _, header := range []string{"NAMESPACE", "PHASE", "ACTIVE", "EDGE NODE", "ROUND", "STAGE", "STATE", "MODELS"} {
		require.Contains(t, out, header)
	}
	for _, name := range []string{"fixture-jointinferenceservice", "fixture-incrementallearningjob",
		"fixture-federatedlearningjob", "fixture-lifelonglearningjob"} {
		require.Regexp(t, ns+`\s+\S+/`+name+`\s`, out)
	}

	out, err = controlPlane.Kubectl(ctx, "get", "reid,va,fe,objs,objt", "-n", ns, "-o", "name")
	require.NoError(t, err, out)
	require.Len(t, strings.Fields(out), 5, out)

	out, err = controlPlane.Kubectl(ctx, "get", "sedna", "-A", "-o", "name")
	require.NoError(t, err, out)
	for _, kc := range kindCases {
		require.Contains(t, out, fmt.Sprintf("%s.sedna.io/fixture-%s", strings.ToLower(kc.kind), strings.ToLower(kc.kind)))
	}
}

// TestCRDsServerSideApply applies the CRDs with server-side apply, as upgrades do; upstream's CRDs
// are too large for client-side apply, and ours must not be for server-side apply.
func TestCRDsServerSideApply(t *testing.T) {
	out, err := controlPlane.Kubectl(context.Background(), "apply", "--server-side", "--force-conflicts",
		"--field-manager=sedna-integration", "-f", controlPlane.CRDDir())
	require.NoError(t, err, out)
	require.Equal(t, len(kindCases), strings.Count(out, "serverside-applied"), out)

	crds, err := controlPlane.CRDs()
	require.NoError(t, err)
	require.Len(t, crds, len(kindCases), "one CRD file per kind")
	for _, crd := range crds {
		require.Contains(t, crd.Spec.Names.Categories, "sedna", crd.Name)
		require.Len(t, crd.Spec.Versions, 1, crd.Name)
		require.NotNil(t, crd.Spec.Versions[0].Subresources, crd.Name)
		require.NotNil(t, crd.Spec.Versions[0].Subresources.Status, crd.Name)
	}
}
