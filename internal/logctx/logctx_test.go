package logctx

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
)

func TestFromPrefersTheInvocationsLogger(t *testing.T) {
	var inv, proc bytes.Buffer
	invocation, process := slog.New(slog.NewTextHandler(&inv, nil)), slog.New(slog.NewTextHandler(&proc, nil))
	From(With(context.Background(), invocation), process).Info("retrying")
	From(context.Background(), process).Info("no invocation")
	From(context.Background(), nil).Info("discarded")
	if !bytes.Contains(inv.Bytes(), []byte("retrying")) || !bytes.Contains(proc.Bytes(), []byte("no invocation")) ||
		bytes.Contains(proc.Bytes(), []byte("retrying")) {
		t.Fatalf("invocation %q, process %q", inv.String(), proc.String())
	}
}
