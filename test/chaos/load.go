package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sedna-go/sedna/examples/joint_inference/mnist/api"
)

// load sends batches of images to the edge worker's /classify and counts the images of every
// answer with status 200: each is an inference the edge counted and must report.
type load struct {
	answered, failed atomic.Int64
	stopCh           chan struct{}
	wg               sync.WaitGroup
}

// startLoad sends a batch of 1 to 20 random images every 100 ms until stop. The client waits
// up to a minute for an answer: a request given up on by the client could still be counted by
// the worker, and the test could not tell.
// dial, when set, is how connections are made (from inside an edge node's network namespace).
func startLoad(url string, seed uint64, dial func(ctx context.Context, network, address string) (net.Conn, error)) *load {
	l := &load{stopCh: make(chan struct{})}
	rng := rand.New(rand.NewPCG(seed, 17))
	client := &http.Client{Timeout: time.Minute}
	if dial != nil {
		client.Transport = &http.Transport{DialContext: dial}
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.stopCh:
				return
			case <-time.After(100 * time.Millisecond):
			}
			n := 1 + rng.IntN(20)
			req := api.ClassifyRequest{Images: make([][]float64, n)}
			for i := range req.Images {
				img := make([]float64, 784)
				for j := range img {
					img[j] = rng.Float64()
				}
				req.Images[i] = img
			}
			body, _ := json.Marshal(req)                                                              // plain floats
			resp, err := client.Post(url+api.ClassifyPath, "application/json", bytes.NewReader(body)) //nolint:noctx // bounded by the client's timeout
			if err != nil {
				l.failed.Add(1)
				continue
			}
			var out api.ClassifyResponse
			decodeErr := json.NewDecoder(resp.Body).Decode(&out)
			_ = resp.Body.Close() // read
			if resp.StatusCode != http.StatusOK || decodeErr != nil || len(out.Results) != n {
				l.failed.Add(1)
				continue
			}
			l.answered.Add(int64(n))
		}
	}()
	return l
}

// stop ends the load and returns the images answered and the requests that failed.
func (l *load) stop() (answered, failed int64) {
	close(l.stopCh)
	l.wg.Wait()
	return l.answered.Load(), l.failed.Load()
}
