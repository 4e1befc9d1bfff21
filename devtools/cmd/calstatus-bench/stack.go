package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/mattermost/mattermost-server/v6/model"

	"github.com/calstatus/calstatus/devtools/teststack"
	"github.com/calstatus/calstatus/handler"
	"github.com/calstatus/calstatus/internal/store"
)

// invalidateCaches makes Mattermost see what was changed in its database.
func invalidateCaches(env teststack.Env) error {
	c := model.NewAPIv4Client(env.MattermostURL)
	c.SetToken(env.MattermostToken)
	if _, err := c.InvalidateCaches(); err != nil {
		return fmt.Errorf("purging Mattermost's caches: %w", err)
	}
	return nil
}

// clearState starts calstatus afresh: no user state, no cycle records, empty queues.
func clearState(ctx context.Context, env teststack.Env) error {
	svc, err := aztables.NewServiceClientFromConnectionString(env.StorageConnectionString, nil)
	if err != nil {
		return err
	}
	for _, name := range []string{store.UsersTable, store.CyclesTable} {
		if _, err := svc.DeleteTable(ctx, name, nil); err != nil && !notFound(err) {
			return fmt.Errorf("clearing table %s: %w", name, err)
		}
		if _, err := svc.CreateTable(ctx, name, nil); err != nil {
			return fmt.Errorf("creating table %s: %w", name, err)
		}
	}
	qs, err := azqueue.NewServiceClientFromConnectionString(env.StorageConnectionString, nil)
	if err != nil {
		return err
	}
	for _, q := range []string{handler.ShardQueue, handler.ShardQueue + "-poison"} {
		qc := qs.NewQueueClient(q)
		_, _ = qc.Create(ctx, nil)
		if _, err := qc.ClearMessages(ctx, nil); err != nil {
			return fmt.Errorf("clearing queue %s: %w", q, err)
		}
	}
	return nil
}

func notFound(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "TableNotFound") || strings.Contains(err.Error(), "ResourceNotFound"))
}
