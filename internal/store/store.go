// Package store keeps calstatus's state in Azure Table Storage: per user, the status we replaced and
// the event we handled (table calstatususers); per sync cycle, what each shard did (calstatuscycles).
//
// User state is partitioned by the first character of the Mattermost user id. Shards are contiguous
// ranges of sorted user ids, so a shard's state lies in a few partitions and is read with one range
// query per partition and written in transactions of at most 100 entities of one partition.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"github.com/calstatus/calstatus/internal/azstorage"
)

const (
	UsersTable  = "calstatususers"
	CyclesTable = "calstatuscycles"
	// AppTable keeps the app's own records: the admin consent, the consent pages' signing key and
	// used states.
	AppTable = "calstatussettings"
	// MaxTransaction is Table Storage's limit of entities in one transaction.
	MaxTransaction = 100
)

// Tables are the tables calstatus keeps its state in; Open creates them.
var Tables = []string{UsersTable, CyclesTable, AppTable}

// Store is the Table Storage adapter.
type Store struct {
	users, cycles, app *aztables.Client
	// roster is the AppTable partition holding the roster (tests use their own).
	roster string
	// Writes counts user-state entity writes, so callers can report (and tests assert) the cost
	// of a shard.
	Writes atomic.Int64
}

// Open connects to the account and creates the tables if they are missing.
func Open(ctx context.Context, account azstorage.Account) (*Store, error) {
	svc, err := account.Tables()
	if err != nil {
		return nil, &Error{Op: "connecting", Err: err}
	}
	for _, name := range Tables {
		if _, err := svc.CreateTable(ctx, name, nil); err != nil && !hasCode(err, aztables.TableAlreadyExists) {
			return nil, &Error{Op: "creating table " + name, Err: err}
		}
	}
	return &Store{users: svc.NewClient(UsersTable), cycles: svc.NewClient(CyclesTable), app: svc.NewClient(AppTable), roster: rosterPartition}, nil
}

func hasCode(err error, code aztables.TableErrorCode) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && (re.ErrorCode == string(code) || strings.Contains(re.Error(), string(code)))
}

// brief is the first line of an Azure SDK error (the rest is a dump of the HTTP exchange).
func brief(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		code := re.ErrorCode
		for _, c := range []aztables.TableErrorCode{aztables.EntityAlreadyExists, aztables.UpdateConditionNotSatisfied, aztables.ResourceNotFound} {
			if code == "" && strings.Contains(re.Error(), string(c)) {
				code = string(c) // a failed transaction names its real error only in the body
			}
		}
		return fmt.Sprintf("%d %s", re.StatusCode, code)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return msg
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Error is a failed Table Storage operation. It prints the first line of the SDK's error (the rest
// is a dump of the HTTP exchange) and unwraps to it.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("table storage: %s: %s", e.Op, brief(e.Err)) }
func (e *Error) Unwrap() error { return e.Err }
