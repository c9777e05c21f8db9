package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/sedna-go/sedna/pkg/localcontroller/managers"
)

// parseWorkerMessage decodes and validates the body of POST /sedna/workers/{worker}/info.
// worker is the path's {worker}. The returned message has OwnerKind in lower case. Every error
// says what is wrong in words a worker's log can show; nothing in body can make it panic.
func parseWorkerMessage(worker string, body []byte) (managers.WorkerMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return managers.WorkerMessage{}, errors.New("request body is empty: want a JSON worker message")
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	// Numbers in ownerInfo and results are forwarded to GM as they were written; float64 would
	// round large integers such as byte counts or timestamps in nanoseconds.
	decoder.UseNumber()
	var msg managers.WorkerMessage
	if err := decoder.Decode(&msg); err != nil {
		return managers.WorkerMessage{}, fmt.Errorf("request body is not a valid JSON worker message: %w", err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return managers.WorkerMessage{}, errors.New("request body has data after the JSON worker message")
	}

	var missing []string
	for _, field := range []struct{ name, value string }{
		{"name", msg.Name}, {"namespace", msg.Namespace}, {"ownerName", msg.OwnerName}, {"ownerKind", msg.OwnerKind},
	} {
		if field.value == "" {
			missing = append(missing, field.name)
		}
	}
	if len(missing) > 0 {
		return managers.WorkerMessage{}, fmt.Errorf("worker message lacks %s", strings.Join(missing, ", "))
	}
	if msg.Name != worker {
		return managers.WorkerMessage{}, fmt.Errorf("worker name %q in the body differs from %q in the path", truncate(msg.Name), truncate(worker))
	}
	// Upstream's LC routed by the lower-cased ownerKind, so "IncrementalLearningJob" works too.
	msg.OwnerKind = strings.ToLower(msg.OwnerKind)
	if strings.Trim(msg.OwnerKind, "abcdefghijklmnopqrstuvwxyz") != "" || len(msg.OwnerKind) > validation.DNS1123LabelMaxLength {
		return managers.WorkerMessage{}, fmt.Errorf("ownerKind %q is not a kind name", truncate(msg.OwnerKind))
	}
	if err := checkNumbers("ownerInfo", msg.OwnerInfo); err != nil {
		return managers.WorkerMessage{}, err
	}
	for i, result := range msg.Results {
		if err := checkNumbers(fmt.Sprintf("results[%d]", i), result); err != nil {
			return managers.WorkerMessage{}, err
		}
	}
	// Only objects with valid names can be bound to this node; saying why is kinder than 404.
	if errs := validation.IsDNS1123Label(msg.Namespace); len(errs) > 0 {
		return managers.WorkerMessage{}, fmt.Errorf("namespace %q is not a valid namespace: %s", truncate(msg.Namespace), strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(msg.OwnerName); len(errs) > 0 {
		return managers.WorkerMessage{}, fmt.Errorf("ownerName %q is not a valid object name: %s", truncate(msg.OwnerName), strings.Join(errs, "; "))
	}
	return msg, nil
}

// checkNumbers refuses numbers a float64 cannot hold (1e400): they would pass through the LC as
// written but fail GM's decoding, so the report could never be applied.
func checkNumbers(where string, value any) error {
	switch v := value.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(v), 64); err != nil {
			return fmt.Errorf("%s: number %s is out of range", where, truncate(string(v)))
		}
	case map[string]any:
		for key, item := range v {
			if err := checkNumbers(where+"."+truncate(key), item); err != nil {
				return err
			}
		}
	case []any:
		for i, item := range v {
			if err := checkNumbers(fmt.Sprintf("%s[%d]", where, i), item); err != nil {
				return err
			}
		}
	}
	return nil
}

// truncate keeps error messages short whatever a client sends.
func truncate(s string) string {
	const limit = 64
	if len(s) > limit {
		return s[:limit] + "..."
	}
	return s
}
