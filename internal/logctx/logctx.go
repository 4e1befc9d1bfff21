// Package logctx carries an invocation's logger in its context, so that what an adapter shared by
// every invocation logs (a retry, a throttled call) lands in that invocation's logs — and so in
// Application Insights — rather than on the process's stderr.
package logctx

import (
	"context"
	"log/slog"
)

type key struct{}

// With returns ctx carrying log.
func With(ctx context.Context, log *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, log)
}

// From returns the logger ctx carries, or fallback (or a logger discarding everything) if none.
func From(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	if fallback != nil {
		return fallback
	}
	return slog.New(slog.DiscardHandler)
}
