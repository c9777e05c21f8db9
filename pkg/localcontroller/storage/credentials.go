package storage

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Keys of the Secret named by a resource's credentialName. The names are upstream Sedna's, so
// Secrets written for upstream work unchanged.
const (
	// AnnotationEndpoint is the Secret annotation holding the S3 endpoint as host[:port].
	AnnotationEndpoint = "s3-endpoint"
	// AnnotationUseHTTPS is the Secret annotation choosing the scheme: "0" means plain http,
	// anything else (or absence) https.
	AnnotationUseHTTPS = "s3-usehttps"
	// DataAccessKeyID is the Secret data key holding the S3 access key id.
	DataAccessKeyID = "ACCESS_KEY_ID"
	// DataSecretAccessKey is the Secret data key holding the S3 secret access key.
	DataSecretAccessKey = "SECRET_ACCESS_KEY"
)

// Credentials for S3, as GM sends them to the LC from the Secret named by credentialName.
type Credentials struct {
	// Endpoint is host[:port], without scheme or path.
	Endpoint        string
	UseHTTPS        bool
	AccessKeyID     string
	SecretAccessKey string
}

// CredentialsFromSecret decodes the S3 credentials from a Secret's annotations and data.
// Errors name the missing or malformed key, never a value, because they end up in logs and in
// resource conditions.
func CredentialsFromSecret(annotations map[string]string, data map[string][]byte) (Credentials, error) {
	endpoint := annotations[AnnotationEndpoint]
	if endpoint == "" {
		return Credentials{}, fmt.Errorf("credential secret: annotation %q is missing or empty", AnnotationEndpoint)
	}
	// minio-go would reject these too, but with a message that does not say which setting to fix.
	if strings.Contains(endpoint, "://") || strings.ContainsAny(endpoint, "/?# \t\n") {
		return Credentials{}, fmt.Errorf("credential secret: annotation %q must be host[:port] without scheme, path or spaces (the scheme comes from %q), got %q",
			AnnotationEndpoint, AnnotationUseHTTPS, endpoint)
	}
	accessKeyID := string(data[DataAccessKeyID])
	if accessKeyID == "" {
		return Credentials{}, fmt.Errorf("credential secret: data key %q is missing or empty", DataAccessKeyID)
	}
	secretAccessKey := string(data[DataSecretAccessKey])
	if secretAccessKey == "" {
		return Credentials{}, fmt.Errorf("credential secret: data key %q is missing or empty", DataSecretAccessKey)
	}
	return Credentials{
		Endpoint: endpoint,
		// Upstream treats only the exact string "0" as http; "false" or "no" still mean https.
		// Keeping that rule means a Secret behaves the same under both implementations.
		UseHTTPS:        annotations[AnnotationUseHTTPS] != "0",
		AccessKeyID:     accessKeyID,
		SecretAccessKey: secretAccessKey,
	}, nil
}

// String hides the secret key so that credentials can be logged or printed with %v safely.
func (c Credentials) String() string {
	scheme := "https"
	if !c.UseHTTPS {
		scheme = "http"
	}
	return fmt.Sprintf("{endpoint: %s://%s, accessKeyID: %s, secretAccessKey: <redacted>}", scheme, c.Endpoint, c.AccessKeyID)
}

// GoString keeps %#v from printing the secret key through the default struct formatting.
func (c Credentials) GoString() string { return "storage.Credentials" + c.String() }

// Environment of workers that use S3, as GM sets it from the Secret named by credentialName
// (pkg/globalmanager/workers).
const (
	EnvS3Endpoint        = "S3_ENDPOINT_URL"
	EnvS3AccessKeyID     = DataAccessKeyID
	EnvS3SecretAccessKey = DataSecretAccessKey
)

// CredentialsFromEnv reads the S3 credentials a worker gets from GM: ACCESS_KEY_ID and
// SECRET_ACCESS_KEY (both or neither) and S3_ENDPOINT_URL (http(s)://host[:port]; a bare
// host[:port] means https; unset means AWS). It returns nil, nil when there are none.
func CredentialsFromEnv(getenv func(string) string) (*Credentials, error) {
	accessKey, secretKey := getenv(EnvS3AccessKeyID), getenv(EnvS3SecretAccessKey)
	if accessKey == "" && secretKey == "" {
		return nil, nil
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New(EnvS3AccessKeyID + " and " + EnvS3SecretAccessKey + " must be set together")
	}
	creds := &Credentials{Endpoint: "s3.amazonaws.com", UseHTTPS: true, AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if endpoint := getenv(EnvS3Endpoint); endpoint != "" {
		if !strings.Contains(endpoint, "://") {
			endpoint = "https://" + endpoint
		}
		u, err := url.Parse(endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("%s %q must be http(s)://host[:port]", EnvS3Endpoint, getenv(EnvS3Endpoint))
		}
		creds.Endpoint, creds.UseHTTPS = u.Host, u.Scheme == "https"
	}
	return creds, nil
}
