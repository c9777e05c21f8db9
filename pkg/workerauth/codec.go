package workerauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// HashToken returns the lowercase hex SHA-256 of token, the value of TokenHashAnnotation.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ParseWorkers decodes the value of WorkersAnnotation. An empty annotation is an empty list (a
// job with no workers on the node). Every entry must name its pod and worker, and a non-empty ip
// must be an IP address, so a malformed annotation cannot match anything by accident.
func ParseWorkers(annotation string) ([]Worker, error) {
	if strings.TrimSpace(annotation) == "" {
		return nil, nil
	}
	decoder := json.NewDecoder(bytes.NewReader([]byte(annotation)))
	var workers []Worker
	if err := decoder.Decode(&workers); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", WorkersAnnotation, err)
	}
	if decoder.More() {
		return nil, fmt.Errorf("decoding %s: trailing data after the list", WorkersAnnotation)
	}
	for i := range workers {
		if err := validateWorker(workers[i]); err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", WorkersAnnotation, i, err)
		}
	}
	return workers, nil
}

// EncodeWorkers encodes workers as the value of WorkersAnnotation, sorted by pod name so that the
// same set of workers always gives the same annotation (an unchanged list publishes nothing new).
func EncodeWorkers(workers []Worker) (string, error) {
	sorted := slices.Clone(workers)
	if sorted == nil {
		sorted = []Worker{}
	}
	for i := range sorted {
		if err := validateWorker(sorted[i]); err != nil {
			return "", fmt.Errorf("worker %d: %w", i, err)
		}
	}
	slices.SortStableFunc(sorted, func(a, b Worker) int { return strings.Compare(a.Pod, b.Pod) })
	encoded, err := json.Marshal(sorted)
	if err != nil {
		return "", fmt.Errorf("encoding %s: %w", WorkersAnnotation, err)
	}
	return string(encoded), nil
}

func validateWorker(worker Worker) error {
	if worker.Pod == "" {
		return fmt.Errorf("pod name is empty")
	}
	if worker.Worker == "" {
		return fmt.Errorf("pod %q: worker name is empty", worker.Pod)
	}
	if worker.IP != "" {
		if _, err := netip.ParseAddr(worker.IP); err != nil {
			return fmt.Errorf("pod %q: ip %q is not an IP address", worker.Pod, worker.IP)
		}
	}
	return nil
}
