package manifest

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

func TestDecode(t *testing.T) {
	objects, err := Decode([]byte(`# a leading comment document
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
data: {k: v}
---
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: b}
`), scheme.Scheme)
	require.NoError(t, err)
	require.Len(t, objects, 2)
	require.Equal(t, "v", objects[0].(*corev1.ConfigMap).Data["k"])
	require.Equal(t, "b", objects[1].(*corev1.ServiceAccount).Name)

	_, err = Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndatta: {}\n"), scheme.Scheme)
	require.ErrorContains(t, err, "document 1")
	require.ErrorContains(t, err, `unknown field "datta"`)

	_, err = Decode([]byte("apiVersion: v9\nkind: Nothing\n"), scheme.Scheme)
	require.ErrorContains(t, err, "document 0")
}
