package main

import (
	"context"
	"errors"
)

func runSessions(ctx context.Context, b *bench, rep *report) (any, error) { return nil, errors.New("todo") }
func runIdle(ctx context.Context, b *bench, rep *report) (any, error)     { return nil, errors.New("todo") }
func runResume(ctx context.Context, b *bench, rep *report) (any, error)   { return nil, errors.New("todo") }
func runChaos(ctx context.Context, b *bench, rep *report) (any, error)    { return nil, errors.New("todo") }
