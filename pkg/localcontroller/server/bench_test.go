package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkWorkerReport measures a forwarded report through the whole handler, by how the sender
// is recognised: the cost of reading the job's published identities and checking them.
func BenchmarkWorkerReport(b *testing.B) {
	for name, setup := range map[string]func(*http.Request){
		"pod IP": func(*http.Request) {},
		"token": func(r *http.Request) {
			r.RemoteAddr = "203.0.113.7:1"
			r.Header.Set("Authorization", "Bearer "+jiToken)
		},
	} {
		b.Run(name, func(b *testing.B) {
			f := newFixture(b, Options{})
			b.ReportAllocs()
			for b.Loop() {
				request := httptest.NewRequest(http.MethodPost, "/sedna/workers/edge-0/info", strings.NewReader(jiReport))
				setup(request)
				recorder := httptest.NewRecorder()
				f.server.ServeHTTP(recorder, request)
				if recorder.Code != http.StatusOK {
					b.Fatalf("answered %d: %s", recorder.Code, recorder.Body)
				}
			}
		})
	}
}
