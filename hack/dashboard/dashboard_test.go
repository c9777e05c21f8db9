package dashboard

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const root = "../.."

// definitions are the metric names the code defines, as patterns: a '*' stands for a part the
// code computes (a controller's or a queue metric's name), which must be a string literal of the
// code too.
type definitions struct {
	patterns                      []string
	literals                      map[string]bool
	goCollector, processCollector bool
}

// scan reads every non-test Go file under pkg/ and cmd/ and collects the names of the metrics
// defined there: prometheus *Opts literals (Namespace, Subsystem, Name) and BuildFQName calls,
// with constants resolved and anything else (a parameter) a wildcard.
func scan(t *testing.T) definitions {
	t.Helper()
	d := definitions{literals: map[string]bool{}}
	fset := token.NewFileSet()
	for _, dir := range []string{"pkg", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				return err
			}
			consts := map[string]string{}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
						d.literals[s] = true
					}
				case *ast.ValueSpec:
					for i, name := range n.Names {
						if i < len(n.Values) {
							if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								consts[name.Name], _ = strconv.Unquote(lit.Value)
							}
						}
					}
				case *ast.SelectorExpr:
					switch n.Sel.Name {
					case "NewGoCollector":
						d.goCollector = true
					case "NewProcessCollector":
						d.processCollector = true
					}
				}
				return true
			})
			value := func(e ast.Expr) string {
				switch e := e.(type) {
				case *ast.BasicLit:
					s, _ := strconv.Unquote(e.Value)
					return s
				case *ast.Ident:
					if v, ok := consts[e.Name]; ok {
						return v
					}
				}
				return "*"
			}
			fq := func(ns, sub, name string) string {
				var parts []string
				for _, p := range []string{ns, sub, name} {
					if p != "" {
						parts = append(parts, p)
					}
				}
				return strings.Join(parts, "_")
			}
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					fields := map[string]string{}
					for _, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && (k.Name == "Namespace" || k.Name == "Subsystem" || k.Name == "Name" || k.Name == "Help") {
								fields[k.Name] = value(kv.Value)
							}
						}
					}
					// A metric's options have a Help; other structs with a Name (resource keys) do not.
					if fields["Name"] != "" && fields["Help"] != "" {
						d.patterns = append(d.patterns, fq(fields["Namespace"], fields["Subsystem"], fields["Name"]))
					}
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "BuildFQName" && len(n.Args) == 3 {
						d.patterns = append(d.patterns, fq(value(n.Args[0]), value(n.Args[1]), value(n.Args[2])))
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(d.patterns)
	return d
}

// defines says whether the code defines metric (a histogram's _bucket, _sum and _count included).
func (d definitions) defines(metric string) bool {
	if strings.HasPrefix(metric, "go_") {
		return d.goCollector
	}
	if strings.HasPrefix(metric, "process_") {
		return d.processCollector
	}
	candidates := []string{metric}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(metric, suffix); ok {
			candidates = append(candidates, base)
		}
	}
	for _, p := range d.patterns {
		re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, "([a-z0-9_]+)") + "$")
		for _, c := range candidates {
			m := re.FindStringSubmatch(c)
			if m == nil {
				continue
			}
			ok := true
			for _, part := range m[1:] {
				ok = ok && d.literals[part]
			}
			if ok {
				return true
			}
		}
	}
	return false
}

var metricRE = regexp.MustCompile(`\b((?:sedna|go|process)_[a-z0-9_]+)\b`)

// dashboardMetrics returns every metric name the dashboard's queries read.
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "docs", "grafana", "sedna-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	seen := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					for _, m := range metricRE.FindAllString(s, -1) {
						seen[m] = true
					}
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(dash)
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func TestDashboardMetricsExist(t *testing.T) {
	d := scan(t)
	metrics := dashboardMetrics(t)
	if len(metrics) < 20 {
		t.Fatalf("the dashboard reads only %d metrics: %v", len(metrics), metrics)
	}
	for _, m := range metrics {
		if !d.defines(m) {
			t.Errorf("the dashboard queries %s, which neither sedna-gm nor sedna-lc defines", m)
		}
	}
	t.Logf("%d metrics queried, all defined; the code defines %d metric name patterns", len(metrics), len(d.patterns))
}

// TestScanFindsKnownMetrics keeps the scanner honest: metrics the e2e tests read are found, and
// names the code does not define are not.
func TestScanFindsKnownMetrics(t *testing.T) {
	d := scan(t)
	for _, m := range []string{"sedna_gm_channel_connected_nodes", "sedna_lc_hostfs_openat2", "sedna_lc_outbox_bytes",
		"sedna_gm_jointinference_syncs_total", "sedna_gm_workqueue_depth", "sedna_gm_model_sync_duration_seconds_bucket"} {
		if !d.defines(m) {
			t.Errorf("%s should be found (patterns: %v)", m, d.patterns)
		}
	}
	for _, m := range []string{"sedna_gm_channel_no_such_total", "sedna_gm_nosuchcontroller_syncs_total", "sedna_lc_outbox_nonexistent_bytes"} {
		if d.defines(m) {
			t.Errorf("%s is not defined by the code but was matched", m)
		}
	}
}
