package kb

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/go-logr/logr"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Prefix is the path under which upstream's knowledge base serves its routes.
const Prefix = "/knowledgebase"

// Routes, relative to Prefix, as upstream's KBClient calls them.
const (
	RouteUpdate       = "/update"
	RouteUpdateStatus = "/update/status"
	RouteQuery        = "/query"
	RouteFileUpload   = "/file/upload"
	RouteFileDownload = "/file/download"
)

// Default limits.
const (
	DefaultMaxFileBytes        = 1 << 30
	DefaultMaxIndexBytes       = 64 << 20
	DefaultMaxQuerySample      = 4096
	DefaultMaxConcurrentWrites = 4
	// minUploadBytesPerSecond is the slowest upload the server waits for: a request's body must
	// arrive within requestReadTime plus its size limit at this rate.
	minUploadBytesPerSecond   = 256 << 10
	requestReadTime           = time.Minute
	maxStatusBodyBytes        = 64 << 10
	maxQueryBytes             = 256 << 20
	maxQueryBytesWithoutIndex = 64 << 10
	maxStatusTasks            = 1024
	maxTaskNameLength         = 256
	// multipartOverhead is what a multipart body may carry beyond its file: boundaries and
	// part headers.
	multipartOverhead = 64 << 10
)

// Options configure a Server.
type Options struct {
	Store *Store
	// WriteToken admits update, update/status and file/upload (and every read). ReadToken admits
	// query and file/download only. A request without a token is admitted only in Compat mode;
	// a request with any other token is refused in every mode.
	WriteToken, ReadToken string
	// Compat admits requests without an Authorization header, on every route, as upstream's
	// Python clients send none; with a WriteToken set it also lets anonymous callers write.
	// cmd/sedna-kb enables it only when no write token is set, unless told otherwise.
	Compat bool
	// MaxFileBytes bounds one uploaded file, MaxIndexBytes one index, MaxQuerySamples the
	// feature vectors of one query. Zero means the default.
	MaxFileBytes, MaxIndexBytes int64
	MaxQuerySamples             int
	// MaxConcurrentWrites bounds the write requests (update, update/status, file/upload) served
	// at once; one more is answered 503 at once. Zero means DefaultMaxConcurrentWrites.
	MaxConcurrentWrites int
	// ScratchDir holds uploads while they arrive (os.TempDir() when empty).
	ScratchDir string
	Logger     logr.Logger
}

// Server serves upstream's knowledge base routes under Prefix.
type Server struct {
	opts  Options
	write workerauth.Admission
	read  workerauth.Admission
	mux   *http.ServeMux
	// writes holds one token per write request being served.
	writes chan struct{}
}

// NewServer checks opts and builds the handler.
func NewServer(opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("knowledge base server: no store")
	}
	if opts.WriteToken == "" && opts.ReadToken != "" {
		return nil, errors.New("knowledge base server: a read token without a write token would let anyone write")
	}
	if opts.WriteToken == "" && !opts.Compat {
		return nil, errors.New("knowledge base server: set a write token, or enable compatibility mode to admit anyone as upstream does")
	}
	if opts.ReadToken != "" && opts.ReadToken == opts.WriteToken {
		return nil, errors.New("knowledge base server: the read token must differ from the write token")
	}
	if opts.MaxFileBytes <= 0 {
		opts.MaxFileBytes = DefaultMaxFileBytes
	}
	if opts.MaxIndexBytes <= 0 {
		opts.MaxIndexBytes = DefaultMaxIndexBytes
	}
	if opts.MaxQuerySamples <= 0 {
		opts.MaxQuerySamples = DefaultMaxQuerySample
	}
	if opts.MaxConcurrentWrites <= 0 {
		opts.MaxConcurrentWrites = DefaultMaxConcurrentWrites
	}
	s := &Server{
		opts:   opts,
		write:  workerauth.Admission{Token: opts.WriteToken, AllowAnonymous: opts.Compat},
		read:   workerauth.Admission{Token: opts.ReadToken, AllowAnonymous: opts.Compat},
		mux:    http.NewServeMux(),
		writes: make(chan struct{}, opts.MaxConcurrentWrites),
	}
	s.mux.HandleFunc("POST "+Prefix+RouteUpdate, s.writer(s.readWithin(opts.MaxIndexBytes, s.serveUpdate)))
	s.mux.HandleFunc("POST "+Prefix+RouteUpdateStatus, s.writer(s.readWithin(maxStatusBodyBytes, s.serveUpdateStatus)))
	s.mux.HandleFunc("POST "+Prefix+RouteFileUpload, s.writer(s.readWithin(opts.MaxFileBytes, s.serveUpload)))
	s.mux.HandleFunc("POST "+Prefix+RouteQuery, s.reader(s.readWithin(maxQueryBytes, s.serveQuery)))
	s.mux.HandleFunc("GET "+Prefix+RouteFileDownload, s.reader(s.serveDownload))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, "ok") })
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// writer admits the write token (or anyone in compatibility mode).
func (s *Server) writer(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		decision := s.write.Admit(r.Header)
		if decision.Status == http.StatusForbidden && s.read.Admit(r.Header).Authenticated {
			decision.Reason = "the read token cannot write to the knowledge base"
		}
		if decision.Status != 0 {
			s.refuse(w, r, decision)
			return
		}
		select {
		case s.writes <- struct{}{}:
			defer func() { <-s.writes }()
		default:
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the knowledge base is serving %d writes already: retry later", cap(s.writes)))
			return
		}
		next(w, r)
	}
}

// readWithin gives the request's body requestReadTime plus the time limit bytes take at
// minUploadBytesPerSecond to arrive, so a slow sender cannot hold a connection (and a write
// slot) forever while a large upload at a reasonable rate still fits.
func (s *Server) readWithin(limit int64, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		deadline := time.Now().Add(requestReadTime + time.Duration(limit/minUploadBytesPerSecond)*time.Second)
		// A ResponseWriter without deadlines (a test recorder) just serves without one.
		_ = http.NewResponseController(w).SetReadDeadline(deadline)
		next(w, r)
	}
}

// reader admits the write token, the read token, or anyone in compatibility mode.
func (s *Server) reader(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		decision := s.write.Admit(r.Header)
		if decision.Status == http.StatusForbidden && s.opts.ReadToken != "" {
			decision = s.read.Admit(r.Header)
		}
		if decision.Status != 0 {
			s.refuse(w, r, decision)
			return
		}
		next(w, r)
	}
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, decision workerauth.Decision) {
	s.opts.Logger.V(2).Info("Refused a request", "path", r.URL.Path, "remote", r.RemoteAddr, "status", decision.Status, "reason", decision.Reason)
	if decision.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sedna-kb"`)
	}
	writeError(w, decision.Status, decision.Reason)
}

// downloadPath is the relative URL upstream's server answers for a stored file; KBClient makes
// it absolute by prefixing its KB_SERVER/knowledgebase.
func downloadPath(name string) string {
	query := url.Values{"files": {name}, "name": {name}}
	return RouteFileDownload + "?" + query.Encode()
}

// serveUpdate stores the index in the multipart field "task".
func (s *Server) serveUpdate(w http.ResponseWriter, r *http.Request) {
	part, err := s.openPart(w, r, "task", s.opts.MaxIndexBytes)
	if err != nil {
		s.writeRequestError(w, r, err)
		return
	}
	data, err := io.ReadAll(io.LimitReader(part.reader, s.opts.MaxIndexBytes+1))
	if err != nil {
		s.writeRequestError(w, r, fmt.Errorf("reading the index: %w", err))
		return
	}
	if int64(len(data)) > s.opts.MaxIndexBytes {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the index is larger than %d bytes", s.opts.MaxIndexBytes))
		return
	}
	sum := sha256.Sum256(data)
	name, err := s.opts.Store.UpdateIndex(r.Context(), data, hex.EncodeToString(sum[:]))
	switch {
	case errors.Is(err, ErrBadIndex):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		s.opts.Logger.Error(err, "Storing an index failed")
		writeError(w, http.StatusInternalServerError, "storing the index failed")
		return
	}
	s.opts.Logger.V(2).Info("Index updated", "file", name, "bytes", len(data))
	writeJSON(w, http.StatusOK, downloadPath(name))
}

// statusRequest is upstream's update/status body.
type statusRequest struct {
	Status *int   `json:"status"`
	Tasks  string `json:"tasks"`
}

func (s *Server) serveUpdateStatus(w http.ResponseWriter, r *http.Request) {
	var request statusRequest
	if err := decodeJSONBody(w, r, maxStatusBodyBytes, &request); err != nil {
		s.writeRequestError(w, r, err)
		return
	}
	if request.Status == nil {
		writeError(w, http.StatusBadRequest, `"status" is missing: want {"status": <int>, "tasks": "a,b"}`)
		return
	}
	var tasks []string
	for _, task := range strings.Split(request.Tasks, ",") {
		task = strings.TrimSpace(task)
		if task == "" {
			continue
		}
		if len(task) > maxTaskNameLength || strings.IndexFunc(task, unicode.IsControl) >= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("task name %.40q is longer than %d characters or has control characters", task, maxTaskNameLength))
			return
		}
		tasks = append(tasks, task)
	}
	if len(tasks) == 0 || len(tasks) > maxStatusTasks {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`"tasks" names %d tasks, want 1 to %d, comma-separated`, len(tasks), maxStatusTasks))
		return
	}
	name, err := s.opts.Store.UpdateStatus(r.Context(), tasks, *request.Status)
	if err != nil {
		s.opts.Logger.Error(err, "Updating task statuses failed")
		writeError(w, http.StatusInternalServerError, "updating task statuses failed")
		return
	}
	if name == "" {
		name = OpaqueIndexFile
	}
	writeJSON(w, http.StatusOK, downloadPath(name))
}

// QueryRequest is the body of POST /knowledgebase/query (ours: upstream's query is a stub).
type QueryRequest struct {
	// FeatureSpace, when set, must equal the index's.
	FeatureSpace string `json:"featureSpace,omitempty"`
	// Features holds one feature vector per sample.
	Features [][]float64 `json:"features"`
}

// QueryResponse answers a query: one Match per sample, in order.
type QueryResponse struct {
	Results []Match `json:"results"`
	// Index is the download path of the index the answer came from ("" before any index).
	Index string `json:"index,omitempty"`
}

func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request) {
	index, file := s.opts.Store.Index()
	if index == nil && file != "" {
		writeError(w, http.StatusConflict, fmt.Sprintf("the knowledge base's index is %s, which it cannot read: upload a JSON index (format %s) to query", file, IndexFormat))
		return
	}
	// A float in JSON takes at most ~25 bytes. Without an index every answer is "unseen" and
	// the vectors are not read: a small body is enough.
	limit, dimension := int64(maxQueryBytesWithoutIndex), 0
	if index != nil {
		limit = min(int64(s.opts.MaxQuerySamples)*int64(index.Dimension)*25+multipartOverhead, maxQueryBytes)
		dimension = index.Dimension
	}
	request, err := decodeQuery(clientReader{http.MaxBytesReader(w, r.Body, limit)}, dimension, s.opts.MaxQuerySamples)
	if err != nil {
		s.writeRequestError(w, r, err)
		return
	}
	response := QueryResponse{Results: make([]Match, len(request.Features))}
	if index == nil {
		// Nothing learned yet: every sample is of an unseen task.
		for i := range response.Results {
			response.Results[i] = (&Index{}).Match(nil)
		}
		writeJSON(w, http.StatusOK, response)
		return
	}
	if request.FeatureSpace != "" && request.FeatureSpace != index.FeatureSpace {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("featureSpace %q differs from the index's %q", request.FeatureSpace, index.FeatureSpace))
		return
	}
	for i, features := range request.Features {
		response.Results[i] = index.Match(features) // decodeQuery checked every length
	}
	response.Index = downloadPath(file)
	writeJSON(w, http.StatusOK, response)
}

// serveUpload stores the multipart field "file" under its file name.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	part, err := s.openPart(w, r, "file", s.opts.MaxFileBytes)
	if err != nil {
		s.writeRequestError(w, r, err)
		return
	}
	if err := CheckFileName(part.fileName); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// The JSON index is what query answers from: only update, which validates it, may write it.
	// index.pkl is opaque, and upstream's server lets an upload replace it as any other file.
	if part.fileName == JSONIndexFile {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s is the knowledge base's index: use %s", part.fileName, Prefix+RouteUpdate))
		return
	}
	spooled, size, sum, err := s.spool(part.reader, s.opts.MaxFileBytes)
	if err != nil {
		s.writeRequestError(w, r, err)
		return
	}
	defer removeSpooled(spooled)
	if err := s.opts.Store.PutFile(r.Context(), part.fileName, spooled, size, sum); err != nil {
		s.opts.Logger.Error(err, "Storing an upload failed", "file", part.fileName)
		writeError(w, http.StatusInternalServerError, "storing the file failed")
		return
	}
	s.opts.Logger.V(2).Info("File stored", "file", part.fileName, "bytes", size)
	writeJSON(w, http.StatusOK, downloadPath(part.fileName))
}

func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	name := query.Get("files")
	if err := CheckFileName(name); err != nil {
		writeError(w, http.StatusBadRequest, `"files": `+err.Error())
		return
	}
	saveAs := query.Get("name")
	if saveAs == "" {
		saveAs = name
	}
	if err := CheckFileName(saveAs); err != nil {
		writeError(w, http.StatusBadRequest, `"name": `+err.Error())
		return
	}
	reader, size, err := s.opts.Store.Files().Open(r.Context(), name)
	if errors.Is(err, ErrFileNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no file %q", name))
		return
	}
	if err != nil {
		s.opts.Logger.Error(err, "Opening a file failed", "file", name)
		writeError(w, http.StatusInternalServerError, "reading the file failed")
		return
	}
	defer func() { _ = reader.Close() }() // read-only: nothing to lose
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": saveAs}))
	w.Header().Set("Content-Length", fmt.Sprint(size))
	if _, err := io.Copy(w, reader); err != nil {
		s.opts.Logger.V(2).Info("Sending a file failed", "file", name, "err", err)
	}
}

// requestError is a client mistake with its HTTP status.
type requestError struct {
	status  int
	message string
}

func (e *requestError) Error() string { return e.message }

func badRequest(status int, format string, args ...any) error {
	return &requestError{status: status, message: fmt.Sprintf(format, args...)}
}

// writeRequestError answers a client's mistake (a requestError, a body over its limit) with its
// 4xx status and message; anything else is the server's fault: logged, and answered 500 with a
// fixed message that names no server path.
func (s *Server) writeRequestError(w http.ResponseWriter, r *http.Request, err error) {
	var request *requestError
	if errors.As(err, &request) {
		writeError(w, request.status, request.message)
		return
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes", tooLarge.Limit))
		return
	}
	s.opts.Logger.Error(err, "Serving a request failed", "path", r.URL.Path, "remote", r.RemoteAddr)
	writeError(w, http.StatusInternalServerError, "the knowledge base failed to serve the request")
}

// clientReader marks the errors of reading a request body as the client's (400), except a body
// over its limit, which stays an *http.MaxBytesError (413).
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	var tooLarge *http.MaxBytesError
	if err != nil && !errors.Is(err, io.EOF) && !errors.As(err, &tooLarge) {
		err = badRequest(http.StatusBadRequest, "reading the request body: %v", err)
	}
	return n, err
}

type filePart struct {
	reader   io.Reader
	fileName string
}

// openPart returns the multipart part named field, reading at most limit bytes of it (the
// whole body is bounded too). The file name is taken from the raw Content-Disposition, not
// Part.FileName (which drops directories), so "../x" is seen and refused rather than rewritten.
func (s *Server) openPart(w http.ResponseWriter, r *http.Request, field string, limit int64) (*filePart, error) {
	r.Body = http.MaxBytesReader(w, r.Body, limit+multipartOverhead)
	reader, err := r.MultipartReader()
	if err != nil {
		return nil, badRequest(http.StatusBadRequest, "want a multipart/form-data body with the field %q: %v", field, err)
	}
	for {
		part, err := reader.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, badRequest(http.StatusBadRequest, "the multipart body has no field %q", field)
		}
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return nil, err
			}
			return nil, badRequest(http.StatusBadRequest, "reading the multipart body: %v", err)
		}
		if part.FormName() != field {
			continue
		}
		_, params, err := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
		if err != nil {
			return nil, badRequest(http.StatusBadRequest, "the Content-Disposition of %q does not parse: %v", field, err)
		}
		return &filePart{reader: clientReader{part}, fileName: params["filename"]}, nil
	}
}

// spool copies an upload into a scratch file so its size is known before the store sees it
// (S3 wants it up front) and a cut-off upload never replaces a good file.
func (s *Server) spool(r io.Reader, limit int64) (*os.File, int64, string, error) {
	file, err := os.CreateTemp(s.opts.ScratchDir, "kb-upload-*")
	if err != nil {
		return nil, 0, "", fmt.Errorf("creating a scratch file: %w", err)
	}
	digest := sha256.New()
	size, err := io.Copy(io.MultiWriter(file, digest), io.LimitReader(r, limit+1))
	if err == nil && size > limit {
		err = badRequest(http.StatusRequestEntityTooLarge, "the file is larger than %d bytes", limit)
	}
	if err == nil {
		_, err = file.Seek(0, io.SeekStart)
	}
	if err != nil {
		removeSpooled(file)
		return nil, 0, "", err
	}
	return file, size, hexSum(digest), nil
}

func hexSum(digest hash.Hash) string { return hex.EncodeToString(digest.Sum(nil)) }

func removeSpooled(file *os.File) {
	_ = file.Close()           // scratch file: nothing to keep
	_ = os.Remove(file.Name()) // best effort; the scratch directory is temporary anyway
}

func decodeJSONBody(w http.ResponseWriter, r *http.Request, limit int64, into any) error {
	body, err := io.ReadAll(clientReader{http.MaxBytesReader(w, r.Body, limit)})
	if err != nil {
		return err
	}
	decoder := json.NewDecoder(bytes.NewReader(body))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(into); err != nil {
		return badRequest(http.StatusBadRequest, "the JSON body does not parse: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, value any) {
	body, err := json.Marshal(value)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client may be gone; nothing to do
}

// writeError answers FastAPI's error shape, {"detail": message}, as upstream's server does.
func writeError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(map[string]string{"detail": message}) // a map of strings always marshals
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client may be gone; nothing to do
}
