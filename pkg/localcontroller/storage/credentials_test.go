package storage

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCredentialsFromSecret(t *testing.T) {
	validData := map[string][]byte{DataAccessKeyID: []byte("AKID"), DataSecretAccessKey: []byte("s3cr3t")}
	tests := map[string]struct {
		annotations map[string]string
		data        map[string][]byte
		want        Credentials
		wantErr     string
	}{
		"usehttps 0 means http": {
			annotations: map[string]string{AnnotationEndpoint: "minio.example:9000", AnnotationUseHTTPS: "0"},
			data:        validData,
			want:        Credentials{Endpoint: "minio.example:9000", UseHTTPS: false, AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"},
		},
		"usehttps 1 means https": {
			annotations: map[string]string{AnnotationEndpoint: "s3.example", AnnotationUseHTTPS: "1"},
			data:        validData,
			want:        Credentials{Endpoint: "s3.example", UseHTTPS: true, AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"},
		},
		"usehttps absent means https": {
			annotations: map[string]string{AnnotationEndpoint: "s3.example"},
			data:        validData,
			want:        Credentials{Endpoint: "s3.example", UseHTTPS: true, AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"},
		},
		"only the exact string 0 means http, as upstream": {
			annotations: map[string]string{AnnotationEndpoint: "s3.example", AnnotationUseHTTPS: "false"},
			data:        validData,
			want:        Credentials{Endpoint: "s3.example", UseHTTPS: true, AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"},
		},
		"no annotations": {
			annotations: nil,
			data:        validData,
			wantErr:     `annotation "s3-endpoint" is missing`,
		},
		"empty endpoint": {
			annotations: map[string]string{AnnotationEndpoint: ""},
			data:        validData,
			wantErr:     `annotation "s3-endpoint" is missing or empty`,
		},
		"endpoint with scheme": {
			annotations: map[string]string{AnnotationEndpoint: "http://minio:9000"},
			data:        validData,
			wantErr:     `annotation "s3-endpoint" must be host[:port]`,
		},
		"endpoint with path": {
			annotations: map[string]string{AnnotationEndpoint: "minio:9000/bucket"},
			data:        validData,
			wantErr:     `annotation "s3-endpoint" must be host[:port]`,
		},
		"missing access key id": {
			annotations: map[string]string{AnnotationEndpoint: "minio:9000"},
			data:        map[string][]byte{DataSecretAccessKey: []byte("s3cr3t")},
			wantErr:     `data key "ACCESS_KEY_ID" is missing`,
		},
		"empty secret access key": {
			annotations: map[string]string{AnnotationEndpoint: "minio:9000"},
			data:        map[string][]byte{DataAccessKeyID: []byte("AKID"), DataSecretAccessKey: {}},
			wantErr:     `data key "SECRET_ACCESS_KEY" is missing`,
		},
		"no data": {
			annotations: map[string]string{AnnotationEndpoint: "minio:9000"},
			data:        nil,
			wantErr:     `data key "ACCESS_KEY_ID" is missing`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CredentialsFromSecret(tc.annotations, tc.data)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), "s3cr3t", "errors must not leak the secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCredentialsFormattingHidesSecret(t *testing.T) {
	creds := Credentials{Endpoint: "minio:9000", AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"}
	for _, format := range []string{"%v", "%+v", "%s", "%#v"} {
		printed := fmt.Sprintf(format, creds)
		require.NotContains(t, printed, "s3cr3t", format)
		require.Contains(t, printed, "AKID", format)
		require.Contains(t, printed, "http://minio:9000", format)
	}
}
