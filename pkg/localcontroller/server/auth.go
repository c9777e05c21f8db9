package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/sedna-go/sedna/pkg/workerauth"
)

// Reasons a report about a job this node holds is refused (the refused_reports_total label).
const (
	// refusedMalformedAuth: an Authorization header that is not exactly one "Bearer <token>".
	refusedMalformedAuth = "malformed_authorization"
	// refusedWrongToken: a bearer token whose hash is not the job's published hash (or the job
	// has none).
	refusedWrongToken = "wrong_token"
	// refusedUnknownSource: no token, and the source IP is not the pod IP of a published worker
	// of that name.
	refusedUnknownSource = "unknown_source"
	// refusedUnreadableIdentities: the job's published identities cannot be read, so nobody can
	// be told apart from anything else on the node network.
	refusedUnreadableIdentities = "unreadable_identities"
)

var refusalReasons = []string{refusedMalformedAuth, refusedWrongToken, refusedUnknownSource, refusedUnreadableIdentities}

// maxTokenLength bounds a bearer token (workerauth.ParseBearer's bound).
const maxTokenLength = workerauth.MaxBearerTokenLength

// refusal is why a report was refused: reason is the metric label, message the answer's text.
type refusal struct {
	reason  string
	message string
}

// identities are what GM published with a job about its workers on this node (contract C1).
type identities struct {
	// tokenHash is the SHA-256 of the job's worker token; hasToken is false when none was published.
	tokenHash [sha256.Size]byte
	hasToken  bool
	workers   []workerauth.Worker
}

// jobIdentities reads the published identities from the job object as the store holds it.
func jobIdentities(object []byte) (identities, error) {
	var job struct {
		Metadata struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(object, &job); err != nil {
		return identities{}, fmt.Errorf("decoding the job's metadata: %w", err)
	}
	var ids identities
	if hash, ok := job.Metadata.Annotations[workerauth.TokenHashAnnotation]; ok {
		decoded, err := hex.DecodeString(hash)
		if err != nil || len(decoded) != sha256.Size {
			return identities{}, fmt.Errorf("annotation %s is not a hex SHA-256", workerauth.TokenHashAnnotation)
		}
		copy(ids.tokenHash[:], decoded)
		ids.hasToken = true
	}
	workers, err := workerauth.ParseWorkers(job.Metadata.Annotations[workerauth.WorkersAnnotation])
	if err != nil {
		return identities{}, err
	}
	ids.workers = workers
	return ids, nil
}

// publishes reports whether worker is one of the workers published with the job for this node.
func (ids identities) publishes(worker string) bool {
	for _, published := range ids.workers {
		if published.Worker == worker {
			return true
		}
	}
	return false
}

// bearerToken returns the token of the request's Authorization header, and whether there was
// one; workerauth.ParseBearer says what is accepted.
func bearerToken(header http.Header) (string, bool, error) {
	token, err := workerauth.ParseBearer(header)
	return token, token != "" || err != nil, err
}

// sourceIP is the TCP peer of the request. Forwarding headers are never looked at: anything on
// the node network can write them.
func sourceIP(remoteAddr string) (netip.Addr, bool) {
	addrPort, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return addrPort.Addr().Unmap(), true
}

// authorize decides whether the request may report as worker about the job with ids (contract
// C1): a bearer token must hash to the published hash; without one, the source must be the pod IP
// of a published worker of that name. It returns nil when the report is accepted.
func authorize(r *http.Request, worker string, ids identities) *refusal {
	token, hasToken, err := bearerToken(r.Header)
	if err != nil {
		return &refusal{reason: refusedMalformedAuth, message: err.Error()}
	}
	if hasToken {
		presented := sha256.Sum256([]byte(token))
		if !ids.hasToken || subtle.ConstantTimeCompare(presented[:], ids.tokenHash[:]) != 1 {
			return &refusal{reason: refusedWrongToken, message: "the bearer token is not this job's worker token"}
		}
		return nil
	}
	source, ok := sourceIP(r.RemoteAddr)
	if ok {
		for _, published := range ids.workers {
			if published.Worker != worker || published.IP == "" {
				continue
			}
			// ParseWorkers checked the address.
			if ip, err := netip.ParseAddr(published.IP); err == nil && ip.Unmap() == source {
				return nil
			}
		}
	}
	return &refusal{
		reason:  refusedUnknownSource,
		message: fmt.Sprintf("no worker token, and %s is not the pod IP of worker %q of this job on this node", source, truncate(worker)),
	}
}
