package runtime

import (
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// TestAddWatchesNamesTheWatchThatCannotBeAdded: handlers are added in order; an informer that
// has stopped refuses its handler and the error names what it watches.
func TestAddWatchesNamesTheWatchThatCannotBeAdded(t *testing.T) {
	client := fake.NewClientset(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}})
	factory := informers.NewSharedInformerFactory(client, 0)
	pods := factory.Core().V1().Pods().Informer()
	secrets := factory.Core().V1().Secrets().Informer()
	var seen []string
	handler := ChangeHandler(func(obj metav1.Object) { seen = append(seen, obj.GetName()) })
	require.NoError(t, AddWatches(Watch{What: "pods", Informer: pods, Handler: handler}))

	stop := make(chan struct{})
	factory.Start(stop)
	require.True(t, cache.WaitForCacheSync(stop, pods.HasSynced))
	close(stop)
	factory.Shutdown() // waits until the informers stopped
	require.Equal(t, []string{"p"}, seen)

	err := AddWatches(
		Watch{What: "pods", Informer: pods, Handler: handler},
		Watch{What: "secrets", Informer: secrets, Handler: handler},
	)
	require.ErrorContains(t, err, "watching pods: ")
}
