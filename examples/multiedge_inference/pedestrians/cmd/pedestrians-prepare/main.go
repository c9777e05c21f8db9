// Command pedestrians-prepare writes the example's model files (the detector's parameters and the
// appearance extractor's identity) into --out-dir, where the Model objects point.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sedna-go/sedna/examples/multiedge_inference/pedestrians/pipeline"
)

func main() {
	outDir := flag.String("out-dir", "/data/pedestrians/models", "directory for the model files")
	flag.Parse()
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for name, model := range pipeline.DefaultModels() {
		data, err := json.MarshalIndent(model, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(*outDir, name), append(data, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("wrote", filepath.Join(*outDir, name))
	}
}
