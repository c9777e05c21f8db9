package incrementallearning

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A trained model URL becomes a hostPath volume of the eval pod (and of the next train pod): the
// LC refuses one whose mounted directory is a symlink, inside or outside the data root, or that
// lies outside the round's train output dir; the train stage fails naming the URL, and no
// Eval/Ready carries it.
func TestTrainedModelURLsGMWouldMountAreChecked(t *testing.T) {
	for name, tc := range map[string]struct {
		// prepare makes the model the worker reports, below rootfs.
		prepare func(t *testing.T, n node)
		url     string
		want    string
	}{
		"link to the host's root": {
			prepare: func(t *testing.T, n node) {
				require.NoError(t, os.Symlink("/", filepath.Join(n.rootfs, "/data/out/train/1/evil")))
			},
			url: "/data/out/train/1/evil/model.pb", want: "symbolic link",
		},
		"link to a directory inside the data root": {
			prepare: func(t *testing.T, n node) {
				require.NoError(t, os.Symlink("../../models/deploy", filepath.Join(n.rootfs, "/data/out/train/1/inside")))
			},
			url: "/data/out/train/1/inside/model.pb", want: "symbolic link",
		},
		"the model itself is a link": {
			prepare: func(t *testing.T, n node) {
				require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(n.rootfs, "/data/out/train/1/model.pb")))
			},
			url: "/data/out/train/1/model.pb", want: "symbolic link",
		},
		"a directory model that is a link": {
			prepare: func(t *testing.T, n node) {
				require.NoError(t, os.Symlink("/", filepath.Join(n.rootfs, "/data/out/train/1/ckpt")))
			},
			url: "/data/out/train/1/ckpt/", want: "symbolic link",
		},
		"outside the train output dir": {
			prepare: func(t *testing.T, n node) {},
			url:     "/data/models/deploy/model.pb", want: "not below the round's train output dir /data/out/train/1",
		},
		"another round's output dir": {
			prepare: func(t *testing.T, n node) { n.writeFile(t, "/data/out/train/10/model.pb", "x") },
			url:     "/data/out/train/10/model.pb", want: "not below the round's train output dir",
		},
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t)
			l := startLC(t, n)
			l.setup(newJob(true))
			l.run()
			n.appendSamples(t, 0, 10)
			l.waitForState("Train/Ready#1")
			tc.prepare(t, n)

			require.NoError(t, l.post(trainCompletedMessage(tc.url)))
			l.waitForState("Train/Waiting#1")
			require.Equal(t, []string{"Train/Ready#1", "Train/Failed#1", "Train/Waiting#1"}, l.states())
			for _, report := range l.stageReports() {
				if report.Input != nil {
					for _, m := range report.Input.Models {
						require.NotEqual(t, tc.url, m.URL, "no stage input carries the refused model")
					}
				}
			}
			reports := l.stageReports()
			message := reports[len(reports)-1].Message
			require.Contains(t, message, tc.url)
			require.Contains(t, message, tc.want)
			require.Nil(t, l.savedRecord().LastTrained, "the refused model is not the next round's base")
		})
	}
}

// A model in the round's output dir, also a directory model and one the worker has not written
// (the eval worker reports that), passes.
func TestTrainedModelInTheOutputDirPasses(t *testing.T) {
	for _, url := range []string{"/data/out/train/1/model.pb", "/data/out/train/1/sub/model.pb", "/data/out/train/1/ckpt/", "/data/out/train/1/missing.pb"} {
		t.Run(url, func(t *testing.T) {
			n := newNode(t)
			l := startLC(t, n)
			l.setup(newJob(true))
			l.run()
			n.appendSamples(t, 0, 10)
			l.waitForState("Train/Ready#1")
			switch url {
			case "/data/out/train/1/ckpt/":
				require.NoError(t, os.MkdirAll(filepath.Join(n.rootfs, url), 0o755))
			case "/data/out/train/1/missing.pb":
			default:
				n.writeFile(t, url, "trained")
			}
			require.NoError(t, l.post(trainCompletedMessage(url)))
			require.Equal(t, []string{"Train/Ready#1", "Train/Completed#1", "Eval/Ready#1"}, l.states())
			require.Equal(t, url, l.stageReports()[2].Input.Models[0].URL)
		})
	}
}

// A link swapped into the trained model's directory after the train report (by the eval pod,
// which mounts it) does not reach the next round's train pod: it trains from the initial model.
func TestNextRoundRefusesALinkedBase(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	n.writeFile(t, "/data/out/train/1/m/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/m/model.pb")))
	require.NoError(t, l.post(evalCompletedMessage(0.8, 0.82))) // not deployed
	l.waitForState("Train/Waiting#1")

	dir := filepath.Join(n.rootfs, "/data/out/train/1/m")
	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.Symlink("/", dir))
	n.appendSamples(t, 10, 10)
	l.waitForState("Train/Ready#2")
	reports := l.stageReports()
	ready := reports[len(reports)-1]
	require.Equal(t, []ModelRef{{Format: "pb", URL: "/data/models/initial/model.pb"}}, ready.Input.Models)
	require.Contains(t, ready.Message, "symbolic link")
}

// The eval pod mounts the trained model's directory read-write: a link to another model below the
// data root swapped in before deployment is refused, not copied into the hot-update dir.
func TestDeployRefusesALinkSwappedInDuringEval(t *testing.T) {
	n := newNode(t)
	l := startLC(t, n)
	l.setup(newJob(true))
	l.run()
	n.appendSamples(t, 0, 10)
	l.waitForState("Train/Ready#1")
	n.writeFile(t, "/data/out/train/1/m/model.pb", "trained-1")
	require.NoError(t, l.post(trainCompletedMessage("/data/out/train/1/m/model.pb")))
	l.waitForState("Eval/Ready#1")

	dir := filepath.Join(n.rootfs, "/data/out/train/1/m")
	require.NoError(t, os.Rename(dir, dir+".old"))
	require.NoError(t, os.Symlink("../../../models/deploy", dir))
	require.NoError(t, l.post(evalCompletedMessage(0.9, 0.8)))
	l.waitForState("Train/Waiting#1")
	states := l.states()
	require.Contains(t, states, "Deploy/Failed#1")
	require.NotContains(t, states, "Deploy/Completed#1")
	reports := l.stageReports()
	require.Contains(t, reports[len(reports)-1].Message, "symbolic link")
	require.NoFileExists(t, filepath.Join(n.rootfs, hotUpdateDir, "model.pb"))
}
