package datasetindex

import (
	"fmt"
	"strings"
)

// Format is the format of a dataset index file, as named by a Dataset's spec.format.
type Format string

const (
	// FormatTxt: every non-blank line is one sample.
	FormatTxt Format = "txt"
	// FormatCSV: the first non-blank line is the header; every further non-blank line is one sample.
	FormatCSV Format = "csv"
)

// ParseFormat maps a Dataset's spec.format to a Format. Upstream's LC compares the lower-cased
// value, so "TXT" and "Csv" are accepted; surrounding spaces are not, as upstream refuses them too.
func ParseFormat(s string) (Format, error) {
	format := Format(strings.ToLower(s))
	if err := format.validate(); err != nil {
		return "", err
	}
	return format, nil
}

func (f Format) validate() error {
	switch f {
	case FormatTxt, FormatCSV:
		return nil
	default:
		return fmt.Errorf("dataset format %q (want %q or %q): %w", string(f), FormatTxt, FormatCSV, ErrUnsupportedFormat)
	}
}
