package runtime

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
)

func TestChildEventsRecordOneEventPerReasonInOrder(t *testing.T) {
	recorder := record.NewFakeRecorder(10)
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "ns"}}
	var e ChildEvents
	e.Record(recorder, obj)
	require.Empty(t, recorder.Events, "nothing changed, nothing recorded")

	e.Add("Updated", "deployment c")
	e.Add("Created", "service b")
	e.Add("Updated", "deployment a")
	e.Record(recorder, obj)
	require.Len(t, recorder.Events, 2)
	require.Equal(t, "Normal Updated Updated deployment a, deployment c", <-recorder.Events)
	require.Equal(t, "Normal Created Created service b", <-recorder.Events)

	e.Record(recorder, obj)
	require.Empty(t, recorder.Events, "Record forgets what it recorded")
}
