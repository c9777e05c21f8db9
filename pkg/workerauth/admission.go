package workerauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// Admission says who may call a worker-facing server that holds one job secret (the federated
// aggregator, the lifelong-learning knowledge base). An empty Token admits everyone.
type Admission struct {
	// Token is the secret; clients present it as "Authorization: Bearer <token>".
	Token string
	// AllowAnonymous admits requests without an Authorization header (upstream's Python clients
	// never send one): compatibility mode. A wrong token is refused in every mode.
	AllowAnonymous bool
}

// Decision is the outcome of Admission.Admit.
type Decision struct {
	// Authenticated is true when the request presented the token.
	Authenticated bool
	// Status is 0 when the request is admitted, else the HTTP status refusing it (401 or 403),
	// with Reason saying why in words a client can act on.
	Status int
	Reason string
}

// Admit checks the request's Authorization header (ParseBearer) against the token, in constant
// time.
func (a Admission) Admit(header http.Header) Decision {
	if a.Token == "" {
		return Decision{}
	}
	token, err := ParseBearer(header)
	if err != nil {
		return Decision{Status: http.StatusUnauthorized, Reason: err.Error()}
	}
	if token == "" {
		if a.AllowAnonymous {
			return Decision{}
		}
		return Decision{Status: http.StatusUnauthorized, Reason: "send Authorization: Bearer <token>"}
	}
	if !a.Matches(token) {
		return Decision{Status: http.StatusForbidden, Reason: "the token is not this job's"}
	}
	return Decision{Authenticated: true}
}

// Matches reports whether token is the admission's token, comparing SHA-256 sums in constant
// time (so neither the token's length nor its prefix leaks through timing).
func (a Admission) Matches(token string) bool {
	if a.Token == "" {
		return false
	}
	want, got := sha256.Sum256([]byte(a.Token)), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(want[:], got[:]) == 1
}
