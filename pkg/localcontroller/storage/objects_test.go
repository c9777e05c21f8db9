package storage

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCredentialsFromSecretObject(t *testing.T) {
	creds, err := CredentialsFromSecretObject([]byte(`{"annotations":{"s3-endpoint":"minio:9000","s3-usehttps":"0"},` +
		`"data":{"ACCESS_KEY_ID":"QUs=","SECRET_ACCESS_KEY":"U0s="}}`))
	require.NoError(t, err)
	require.Equal(t, Credentials{Endpoint: "minio:9000", AccessKeyID: "AK", SecretAccessKey: "SK"}, creds)

	_, err = CredentialsFromSecretObject([]byte(`{"data":`))
	require.ErrorContains(t, err, "the Secret does not parse")
	_, err = CredentialsFromSecretObject([]byte(`{"annotations":{},"data":{"ACCESS_KEY_ID":"QUs=","SECRET_ACCESS_KEY":"U0s="}}`))
	require.ErrorContains(t, err, `annotation "s3-endpoint" is missing`)
}

func TestObjectsAreS3Only(t *testing.T) {
	client, err := New("/", &Credentials{Endpoint: "127.0.0.1:1"})
	require.NoError(t, err)
	_, _, err = client.OpenObject(context.Background(), "/data/model.pb")
	require.ErrorContains(t, err, "/data/model.pb is not an s3:// URL")
	err = client.PutObject(context.Background(), "s3://bucket/prefix/", nil, 0)
	require.ErrorContains(t, err, "names a prefix, not an object")
}
