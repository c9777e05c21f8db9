package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/sedna-go/sedna/pkg/localcontroller/storage"
	"github.com/sedna-go/sedna/pkg/sdk/federated"
)

// checkpointSubdir is where checkpoints go by default: beside MODEL_URL, in
// <directory of MODEL_URL>/checkpoint/ (federated.CheckpointFile inside it).
const checkpointSubdir = "checkpoint"

// finalModelFile is the final model's file name when MODEL_URL names a
// directory (an existing one, or any path or s3:// prefix ending in "/"):
// GM mounts a Model whose url is a directory, such as upstream's "/model",
// as that directory, so the model goes inside it.
const finalModelFile = "global-model.sflb"

// resolveModelURL returns the file or object the final model is written to.
func resolveModelURL(url string) string {
	if strings.HasSuffix(url, "/") {
		if isS3(url) {
			return url + finalModelFile
		}
		return filepath.Join(url, finalModelFile)
	}
	if !isS3(url) {
		if info, err := os.Stat(url); err == nil && info.IsDir() {
			return filepath.Join(url, finalModelFile)
		}
	}
	return url
}

// maxModelBytes bounds a checkpoint object read back from S3.
const maxModelBytes = 4 << 30

// objectStore keeps a checkpoint (or the final model) as one S3 object: a PUT
// replaces an object atomically, so Load sees the previous checkpoint or
// the new one.
type objectStore struct {
	client *storage.Client
	url    string
}

var _ federated.CheckpointStore = objectStore{}

func (s objectStore) Save(ctx context.Context, cp *federated.Checkpoint) error {
	body, err := cp.MarshalBinary()
	if err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	if err := s.client.PutObject(ctx, s.url, bytes.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("saving checkpoint: %w", err)
	}
	return nil
}

func (s objectStore) Load(ctx context.Context) (*federated.Checkpoint, error) {
	reader, size, err := s.client.OpenObject(ctx, s.url)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint: %w", err)
	}
	defer func() { _ = reader.Close() }() // read-only
	if size > maxModelBytes {
		return nil, fmt.Errorf("loading checkpoint %s: %d bytes is more than %d", s.url, size, maxModelBytes)
	}
	data, err := io.ReadAll(io.LimitReader(reader, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint %s: %w", s.url, err)
	}
	cp, err := federated.UnmarshalCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("loading checkpoint %s: %w", s.url, err)
	}
	return cp, nil
}

// stores builds CheckpointStores for local paths and s3:// URLs; the S3
// client is made on first use from the credentials GM passes
// (S3_ENDPOINT_URL, ACCESS_KEY_ID, SECRET_ACCESS_KEY).
type stores struct {
	getenv func(string) string
	client *storage.Client
}

func isS3(url string) bool { return strings.HasPrefix(url, "s3://") }

// file is the store of one file: the final model.
func (s *stores) file(url string) (federated.CheckpointStore, error) {
	if isS3(url) {
		if strings.HasSuffix(url, "/") {
			return nil, fmt.Errorf("model URL %s names a prefix; name the model object", url)
		}
		return s.object(url)
	}
	if url == "" || strings.HasSuffix(url, "/") || !filepath.IsAbs(url) {
		return nil, fmt.Errorf("model URL %q must be an absolute file path or an s3:// object", url)
	}
	return federated.DirStore{Dir: filepath.Dir(url), File: filepath.Base(url)}, nil
}

// dir is the checkpoint store in a directory or below an s3:// prefix.
func (s *stores) dir(url string) (federated.CheckpointStore, error) {
	if isS3(url) {
		return s.object(strings.TrimSuffix(url, "/") + "/" + federated.CheckpointFile)
	}
	if !filepath.IsAbs(url) {
		return nil, fmt.Errorf("checkpoint directory %q must be an absolute path or an s3:// prefix", url)
	}
	return federated.DirStore{Dir: url}, nil
}

// besideModel is the default checkpoint location for modelURL.
func besideModel(modelURL string) string {
	if isS3(modelURL) {
		return "s3://" + path.Join(path.Dir(strings.TrimPrefix(modelURL, "s3://")), checkpointSubdir)
	}
	return filepath.Join(filepath.Dir(modelURL), checkpointSubdir)
}

func (s *stores) object(url string) (federated.CheckpointStore, error) {
	if _, err := storage.ParseURL(url); err != nil {
		return nil, err
	}
	if s.client == nil {
		creds, err := storage.CredentialsFromEnv(s.getenv)
		if err != nil {
			return nil, err
		}
		if creds == nil {
			return nil, fmt.Errorf("%s needs S3 credentials: %s and %s are not set", url, storage.EnvS3AccessKeyID, storage.EnvS3SecretAccessKey)
		}
		if s.client, err = storage.New(string(os.PathSeparator), creds); err != nil {
			return nil, err
		}
	}
	return objectStore{client: s.client, url: url}, nil
}
