package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sedna-go/sedna/pkg/kb"
)

// reexecVariable makes the test binary run the server instead of the tests, so a test can
// SIGKILL a real server process.
const reexecVariable = "SEDNA_KB_TEST_RUN_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(reexecVariable) == "1" {
		ready := make(chan string, 1)
		go func() { fmt.Println("LISTENING", <-ready) }()
		if err := run(context.Background(), []string{"-bind", "127.0.0.1:0"}, os.LookupEnv, ready); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startProcess starts the server as its own process on dataDir and returns its base URL.
func startProcess(t *testing.T, dataDir string) (string, *exec.Cmd) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), reexecVariable+"=1", "KnowledgeBasePath="+dataDir, "SEDNA_KB_TOKEN=w", "SEDNA_KB_COMPAT=false")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }) // already gone when killed by the test
	lines := bufio.NewScanner(stdout)
	deadline := time.After(30 * time.Second)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if address, ok := strings.CutPrefix(lines.Text(), "LISTENING "); ok {
				found <- address
			}
		}
	}()
	select {
	case address := <-found:
		return "http://" + address, cmd
	case <-deadline:
		require.FailNow(t, "the server process did not start")
		return "", nil
	}
}

func call(t *testing.T, method, url, contentType string, body []byte) (int, []byte) {
	request, err := http.NewRequest(method, url, bytes.NewReader(body))
	require.NoError(t, err)
	request.Header.Set("Authorization", "Bearer w")
	if contentType != "" {
		request.Header.Set("Content-Type", contentType)
	}
	response, err := http.DefaultClient.Do(request)
	require.NoError(t, err)
	defer func() { _ = response.Body.Close() }()
	content, err := io.ReadAll(response.Body)
	require.NoError(t, err)
	return response.StatusCode, content
}

func form(t *testing.T, field, name string, content []byte) (string, []byte) {
	var body bytes.Buffer
	writer := multipart.NewWriter(&body)
	part, err := writer.CreateFormFile(field, name)
	require.NoError(t, err)
	_, err = part.Write(content)
	require.NoError(t, err)
	require.NoError(t, writer.Close())
	return writer.FormDataContentType(), body.Bytes()
}

// TestNothingIsLostWhenTheProcessIsKilled writes a model, an index and a task status, SIGKILLs
// the server (no shutdown, no close of the database) and restarts it on the same directory.
func TestNothingIsLostWhenTheProcessIsKilled(t *testing.T) {
	dataDir := t.TempDir()
	base, cmd := startProcess(t, dataDir)
	contentType, body := form(t, "file", "rotation-0.model", []byte("weights"))
	status, _ := call(t, http.MethodPost, base+"/knowledgebase/file/upload", contentType, body)
	require.Equal(t, http.StatusOK, status)
	index := kb.Index{Format: kb.IndexFormat, FeatureSpace: "f", Dimension: 1, Tasks: []kb.Task{
		{ID: "rotation-0", Model: kb.Model{URL: base + "/knowledgebase/file/download?files=rotation-0.model"}, Centroids: [][]float64{{0}}, Radius: 1},
	}}
	encoded, err := json.Marshal(index)
	require.NoError(t, err)
	contentType, body = form(t, "task", "index.json", encoded)
	status, _ = call(t, http.MethodPost, base+"/knowledgebase/update", contentType, body)
	require.Equal(t, http.StatusOK, status)
	status, _ = call(t, http.MethodPost, base+"/knowledgebase/update/status", "application/json", []byte(`{"status":1,"tasks":"rotation-0"}`))
	require.Equal(t, http.StatusOK, status)

	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait() // killed: its exit status says nothing

	base, _ = startProcess(t, dataDir)
	status, content := call(t, http.MethodGet, base+"/knowledgebase/file/download?files=rotation-0.model", "", nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "weights", string(content))
	status, content = call(t, http.MethodPost, base+"/knowledgebase/query", "application/json", []byte(`{"features":[[0.5],[3]]}`))
	require.Equal(t, http.StatusOK, status, string(content))
	var answer kb.QueryResponse
	require.NoError(t, json.Unmarshal(content, &answer))
	require.Equal(t, "rotation-0", answer.Results[0].Task)
	require.True(t, answer.Results[1].Unseen)
	status, content = call(t, http.MethodGet, base+"/knowledgebase/file/download?files=index.json", "", nil)
	require.Equal(t, http.StatusOK, status)
	var stored kb.Index
	require.NoError(t, json.Unmarshal(content, &stored))
	require.Equal(t, 1, stored.Tasks[0].Status, "the status set before the kill survives")
}
