package ll

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/sedna-go/sedna/examples/incremental_learning/mnist/il"
	"github.com/sedna-go/sedna/examples/joint_inference/mnist/model"
)

// CSVHeader is the header of the example's datasets (upstream's lifelong learning datasets are
// csv files with a header line).
var CSVHeader = []string{"ref", "label", TaskAttribute}

// maxDatasetBytes bounds a dataset file.
const maxDatasetBytes = 64 << 20

// Row is one sample: an image reference as the incremental learning example's (il.ParseRef: a
// PNG below the dataset directory, or "<idx file>:<n>"), its digit, and its rotation attribute.
// An idx image is an upright MNIST digit and is rotated by Rotation on load; a PNG is the image
// as the camera saw it (already rotated) and is taken as it is.
type Row struct {
	Ref      string
	Label    int
	Rotation int
}

// ParseCSV reads a dataset; errors name the line.
func ParseCSV(content []byte) ([]Row, error) {
	reader := csv.NewReader(bytes.NewReader(content))
	reader.FieldsPerRecord = len(CSVHeader)
	header, err := reader.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataset header: %w", err)
	}
	if strings.Join(header, ",") != strings.Join(CSVHeader, ",") {
		return nil, fmt.Errorf("dataset header is %q, want %q", strings.Join(header, ","), strings.Join(CSVHeader, ","))
	}
	var rows []Row
	for line := 2; ; line++ {
		record, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		if _, err := il.ParseRef(record[0]); err != nil {
			return nil, fmt.Errorf("dataset line %d: %w", line, err)
		}
		label, err := strconv.Atoi(record[1])
		if err != nil || label < 0 || label >= model.Classes {
			return nil, fmt.Errorf("dataset line %d: label %q is not a digit 0-9", line, record[1])
		}
		rotation, err := strconv.Atoi(record[2])
		if err != nil || rotation <= -360 || rotation >= 360 {
			return nil, fmt.Errorf("dataset line %d: rotation %q is not a whole number of degrees in (-360,360)", line, record[2])
		}
		rows = append(rows, Row{Ref: record[0], Label: label, Rotation: rotation})
	}
}

// ReadCSV reads a dataset file.
func ReadCSV(file string) ([]Row, error) {
	info, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("reading the dataset: %w", err)
	}
	if info.Size() > maxDatasetBytes {
		return nil, fmt.Errorf("reading the dataset %s: %d bytes, at most %d", file, info.Size(), maxDatasetBytes)
	}
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading the dataset: %w", err)
	}
	rows, err := ParseCSV(content)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return rows, nil
}

// WriteCSV writes rows with the header.
func WriteCSV(w io.Writer, rows []Row) error {
	writer := csv.NewWriter(w)
	if err := writer.Write(CSVHeader); err != nil {
		return err
	}
	for _, row := range rows {
		if err := writer.Write([]string{row.Ref, strconv.Itoa(row.Label), strconv.Itoa(row.Rotation)}); err != nil {
			return err
		}
	}
	writer.Flush()
	return writer.Error()
}

// Load reads the images of rows (rotating idx images) into a dataset.
func Load(store *il.Store, rows []Row) (model.Dataset, error) {
	data := model.Dataset{Pixels: make([]uint8, 0, len(rows)*model.Pixels), Labels: make([]uint8, 0, len(rows))}
	for _, row := range rows {
		pixels, err := store.Image(row.Ref)
		if err != nil {
			return model.Dataset{}, err
		}
		image := model.Dataset{Pixels: pixels, Labels: []uint8{uint8(row.Label)}}
		if parsed, _ := il.ParseRef(row.Ref); parsed.Index >= 0 {
			image = Rotate(image, float64(row.Rotation))
		}
		data.Pixels = append(data.Pixels, image.Pixels...)
		data.Labels = append(data.Labels, uint8(row.Label))
	}
	return data, nil
}

// RowAttributes returns a row's task attributes.
func RowAttributes(row Row) map[string]string {
	return map[string]string{TaskAttribute: strconv.Itoa(row.Rotation)}
}
