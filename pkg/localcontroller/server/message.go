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

// unacceptableError is a parse error about a readable message from the path's worker whose
// content this LC cannot use (a missing owner, a name that cannot exist, a number out of range).
// Upstream's LC answered those 200 and dropped them; every other parse error is one upstream
// answered 400 too (a body it could not read, or a name differing from the path).
type unacceptableError struct{ err error }

func (e *unacceptableError) Error() string { return e.err.Error() }
func (e *unacceptableError) Unwrap() error { return e.err }

// parseWorkerMessage decodes and validates the body of POST /sedna/workers/{worker}/info.
// worker is the path's {worker}. The returned message has OwnerKind in lower case. Every error
// says what is wrong in words a worker's log can show; nothing in body can make it panic. Errors
// about the content of a readable message from worker are *unacceptableError.
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
	if msg.Name == "" {
		return managers.WorkerMessage{}, fmt.Errorf("worker message lacks %s", strings.Join(missing, ", "))
	}
	if msg.Name != worker {
		return managers.WorkerMessage{}, fmt.Errorf("worker name %q in the body differs from %q in the path", truncate(msg.Name), truncate(worker))
	}
	if err := validateContent(msg, missing); err != nil {
		return managers.WorkerMessage{}, &unacceptableError{err: err}
	}
	msg.OwnerKind = strings.ToLower(msg.OwnerKind)
	return msg, nil
}

// validateContent checks what a readable message from the right worker says. missing lists the
// required fields it lacks.
func validateContent(msg managers.WorkerMessage, missing []string) error {
	if len(missing) > 0 {
		return fmt.Errorf("worker message lacks %s", strings.Join(missing, ", "))
	}
	// Upstream's LC routed by the lower-cased ownerKind, so "IncrementalLearningJob" works too.
	ownerKind := strings.ToLower(msg.OwnerKind)
	if strings.Trim(ownerKind, "abcdefghijklmnopqrstuvwxyz") != "" || len(ownerKind) > validation.DNS1123LabelMaxLength {
		return fmt.Errorf("ownerKind %q is not a kind name", truncate(msg.OwnerKind))
	}
	// Upstream's LC decoded numbers as json.Number too, so these reached GM and failed there.
	if err := checkNumbers("ownerInfo", msg.OwnerInfo); err != nil {
		return err
	}
	for i, result := range msg.Results {
		if err := checkNumbers(fmt.Sprintf("results[%d]", i), result); err != nil {
			return err
		}
	}
	// Only objects with valid names can be bound to this node; saying why is kinder than 404.
	if errs := validation.IsDNS1123Label(msg.Namespace); len(errs) > 0 {
		return fmt.Errorf("namespace %q is not a valid namespace: %s", truncate(msg.Namespace), strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(msg.OwnerName); len(errs) > 0 {
		return fmt.Errorf("ownerName %q is not a valid object name: %s", truncate(msg.OwnerName), strings.Join(errs, "; "))
	}
	return nil
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
