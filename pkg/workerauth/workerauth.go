// Package workerauth names what GM tells an LC about a job's workers, so the LC can tell a
// job's own workers from anything else on the node network.
package workerauth

const (
	// TokenEnv is the worker container's env var holding the job's worker token.
	TokenEnv = "SEDNA_WORKER_TOKEN"
	// TokenKey is the key of the token in the job's worker-token Secret.
	TokenKey = "token"
	// TokenSecretSuffix ends the Secret's name: <cr name>-<lowercase kind> + TokenSecretSuffix.
	TokenSecretSuffix = "-worker-token"
	// TokenSecretLabel marks worker-token Secrets.
	TokenSecretLabel = "sedna.io/worker-token"
	// TokenHashAnnotation carries the lowercase hex SHA-256 of the token on the copy GM publishes.
	TokenHashAnnotation = "sedna.io/worker-token-sha256"
	// WorkersAnnotation carries the JSON list of the job's workers on the receiving node.
	WorkersAnnotation = "sedna.io/workers"
)

// Worker is one worker pod of a job on the receiving node.
type Worker struct {
	Pod    string `json:"pod"`
	Worker string `json:"worker"`
	IP     string `json:"ip,omitempty"`
	Kind   string `json:"kind"`
}
