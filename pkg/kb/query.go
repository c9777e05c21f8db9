package kb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// decodeQuery reads a QueryRequest token by token, so a body of many tiny vectors costs no more
// than the vectors it is allowed to hold: it stops at the vector past maxSamples, and, when
// dimension > 0, at the first value past the dimension or the first vector of another length.
// Errors are requestErrors (4xx) or the reader's (e.g. *http.MaxBytesError).
func decodeQuery(body io.Reader, dimension, maxSamples int) (QueryRequest, error) {
	var request QueryRequest
	decoder := json.NewDecoder(body)
	if err := expectDelim(decoder, '{', "the JSON body"); err != nil {
		return request, err
	}
	seenFeatures := false
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return request, jsonError(err)
		}
		switch key, _ := token.(string); key {
		case "featureSpace":
			if err := decoder.Decode(&request.FeatureSpace); err != nil {
				return request, jsonError(err)
			}
		case "features":
			if seenFeatures {
				return request, badRequest(http.StatusBadRequest, `"features" appears twice`)
			}
			seenFeatures = true
			request.Features, err = decodeVectors(decoder, "features", dimension, maxSamples)
			if err != nil {
				return request, err
			}
		default:
			return request, badRequest(http.StatusBadRequest, "the JSON body does not parse: unknown field %q", key)
		}
	}
	if err := expectDelim(decoder, '}', "the JSON body"); err != nil {
		return request, err
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			return request, jsonError(err)
		}
		return request, badRequest(http.StatusBadRequest, "the JSON body has data after its object")
	}
	if len(request.Features) == 0 {
		return request, badRequest(http.StatusBadRequest, `"features" holds 0 vectors, want 1 to %d`, maxSamples)
	}
	return request, nil
}

// decodeVectors reads an array (or null) of arrays of numbers, at most maxVectors of them, each of
// exactly dimension values when dimension > 0; when it is 0 (no index to compare with) the values
// are checked but not kept. what names the array in errors.
func decodeVectors(decoder *json.Decoder, what string, dimension, maxVectors int) ([][]float64, error) {
	token, err := decoder.Token()
	if err != nil {
		return nil, jsonError(err)
	}
	if token == nil {
		return nil, nil
	}
	if token != json.Delim('[') {
		return nil, badRequest(http.StatusBadRequest, "%q must be an array of arrays of numbers", what)
	}
	var vectors [][]float64
	for decoder.More() {
		i := len(vectors)
		if i == maxVectors {
			return nil, badRequest(http.StatusBadRequest, "%q holds more than %d vectors, want 1 to %d", what, maxVectors, maxVectors)
		}
		element := fmt.Sprintf("%s[%d]", what, i)
		if err := expectDelim(decoder, '[', element); err != nil {
			return nil, err
		}
		vector := make([]float64, 0, dimension)
		for decoder.More() {
			if dimension > 0 && len(vector) == dimension {
				return nil, badRequest(http.StatusBadRequest, "%s has more than %d values, the index's dimension is %d", element, dimension, dimension)
			}
			token, err := decoder.Token()
			if err != nil {
				return nil, jsonError(err)
			}
			value, ok := token.(float64)
			if !ok {
				return nil, badRequest(http.StatusBadRequest, "%s[%d] is not a number", element, len(vector))
			}
			if dimension > 0 {
				vector = append(vector, value)
			}
		}
		if err := expectDelim(decoder, ']', element); err != nil {
			return nil, err
		}
		if dimension > 0 && len(vector) != dimension {
			return nil, badRequest(http.StatusBadRequest, "%s has %d values, the index's dimension is %d", element, len(vector), dimension)
		}
		vectors = append(vectors, vector)
	}
	if err := expectDelim(decoder, ']', strconv.Quote(what)); err != nil {
		return nil, err
	}
	return vectors, nil
}

func expectDelim(decoder *json.Decoder, delim json.Delim, what string) error {
	token, err := decoder.Token()
	if err != nil {
		return jsonError(err)
	}
	if token != delim {
		return badRequest(http.StatusBadRequest, "the JSON body does not parse: %s: want %q, got %v", what, string(delim), token)
	}
	return nil
}

// jsonError keeps a body-size error as it is (answered 413) and makes any other a 400.
func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return badRequest(http.StatusBadRequest, "the JSON body does not parse: %v", err)
}
