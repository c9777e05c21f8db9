package main

import (
	"context"
	"errors"

	"github.com/sedna-go/sedna/test/localsedna"
)

// runDemo runs the joint inference MNIST example on the local cluster.
func runDemo(ctx context.Context, s *localsedna.Sedna) error {
	_ = ctx
	_ = s
	return errors.New("the demo is not wired yet")
}
