package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"github.com/calstatus/calstatus/internal/azstorage"
)

// A part of the storage account and the role the identity needs on it.
type part struct {
	kind, role string
}

var (
	blobPart  = part{"blob container", "Storage Blob Data Owner"}
	queuePart = part{"queue", "Storage Queue Data Contributor"}
	tablePart = part{"table", "Storage Table Data Contributor"}
)

// via says how the account is reached.
func (r *run) via() string {
	switch r.d.StorageIdentity {
	case "":
		return "with the connection string (AzureWebJobsStorage)"
	case "system":
		return "with the system-assigned identity"
	}
	return "with the managed identity " + r.d.StorageIdentity
}

func (r *run) account() string {
	if r.d.StorageAccount == "" {
		return "the storage account"
	}
	return "storage account " + r.d.StorageAccount
}

// noStorage is the line of a storage check when the settings give no account.
func (r *run) noStorage(id string) bool {
	if r.d.Storage != nil {
		return false
	}
	r.skip(id, "AzureWebJobsStorage gives no storage account to reach (see Settings)")
	return true
}

func (r *run) blob(ctx context.Context) {
	if r.noStorage(CheckBlob) {
		return
	}
	name := r.d.HostContainer
	err := r.within(ctx, func(ctx context.Context) error { return r.d.Storage.Container(ctx, name) })
	var re *azcore.ResponseError
	switch {
	case err == nil:
		r.ok(CheckBlob, fmt.Sprintf("reached container %s in %s %s", name, r.account(), r.via()))
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		r.ok(CheckBlob, fmt.Sprintf("reached the blob service of %s %s; container %s does not exist yet (the Functions host creates it)", r.account(), r.via(), name))
	default:
		detail, fix := r.storageFailure(err, blobPart, name)
		r.problem(CheckBlob, detail, fix+" Without its blob container the Functions host can keep no lease, timer schedule or function key.")
	}
}

func (r *run) queues(ctx context.Context) {
	if r.noStorage(CheckQueues) {
		return
	}
	r.each(ctx, CheckQueues, queuePart, r.d.Queues, r.d.Storage.Queue,
		"the shard queue's messages are not delivered: no shard runs")
}

func (r *run) tables(ctx context.Context) {
	if r.noStorage(CheckTables) {
		return
	}
	r.each(ctx, CheckTables, tablePart, r.d.Tables, r.d.Storage.Table,
		"calstatus cannot keep what it changed, so it changes nothing")
}

// each makes one call per name, all within the line's timeout.
func (r *run) each(ctx context.Context, id string, p part, names []string, call func(context.Context, string) error, consequence string) {
	var failed []string
	var first error
	_ = r.within(ctx, func(ctx context.Context) error {
		for _, n := range names {
			if err := call(ctx, n); err != nil {
				failed = append(failed, n)
				if first == nil {
					first = err
				}
			}
		}
		return nil
	})
	if first == nil {
		r.ok(id, fmt.Sprintf("reached %s in %s %s", joinAnd(names), r.account(), r.via()))
		return
	}
	detail, fix := r.storageFailure(first, p, strings.Join(failed, ", "))
	r.problem(id, detail, fix+" Until then "+consequence+".")
}

// storageFailure says what a failed call to a part of the account means and what to do.
func (r *run) storageFailure(err error, p part, names string) (detail, fix string) {
	what := p.kind + " " + names
	identity := r.d.StorageIdentity != ""
	grant := fmt.Sprintf("Give %s the role %s on %s (the deployment assigns it; a new role assignment takes up to 10 minutes to apply).",
		strings.TrimPrefix(r.via(), "with "), p.role, r.account())
	var re *azcore.ResponseError
	var authErr *azidentity.AuthenticationFailedError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s: no answer within %s from %s", what, r.timeout, r.account()),
			"Check AzureWebJobsStorage__accountName (or the connection string's endpoints) and the account's Networking: it must let the function app in."
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("%s: %s does not exist (no such host %s)", what, r.account(), dnsErr.Name),
			"Check AzureWebJobsStorage__accountName, or the account name in the connection string."
	case errors.As(err, &authErr) || strings.Contains(err.Error(), "ManagedIdentityCredential"):
		return fmt.Sprintf("%s: the managed identity could not get a token for storage: %s", what, brief(err)),
			"Assign the identity AzureWebJobsStorage__clientId names to the function app (its Identity page, User assigned), and give its client id there, not its object (principal) id."
	case errors.As(err, &re):
		code := re.ErrorCode
		detail = fmt.Sprintf("%s: %s answered %d %s", what, r.account(), re.StatusCode, code)
		switch {
		case code == "AuthorizationPermissionMismatch" && identity:
			return detail + ": the identity is not allowed to", grant
		case code == "AuthorizationPermissionMismatch":
			return detail + ": the connection string's credential does not allow it", "Use a connection string with the account key, or the identity-based settings the deployment uses."
		case code == "KeyBasedAuthenticationNotPermitted":
			return detail + ": the account does not take its keys (shared key access is off)",
				"Use the identity-based settings (AzureWebJobsStorage__accountName, __credential managedidentity, __clientId) instead of a connection string, as the deployment does."
		case code == "AuthorizationFailure":
			return detail + ": the account refuses the app (its firewall or private endpoints)",
				"In the storage account's Networking, let the function app in (public access from selected networks including the app's, or its virtual network)."
		case code == "AuthenticationFailed" && !identity:
			return detail + ": the connection string's key is not the account's (rotated?)", "Put the account's current connection string in AzureWebJobsStorage."
		case code == "AuthenticationFailed":
			return detail + ": the account refused the identity's token", grant
		case re.StatusCode == http.StatusNotFound:
			return fmt.Sprintf("%s is missing in %s", what, r.account()),
				"calstatus creates its queues and tables when it starts, and the deployment creates them too: restart the function app."
		case re.StatusCode == http.StatusForbidden && identity:
			return detail, grant
		}
		return detail, "Look up the storage error code " + code + "; the function's log has the full answer."
	}
	return fmt.Sprintf("%s: %s", what, brief(err)), "Check AzureWebJobsStorage and the account's Networking; the function's log has the full error."
}

func joinAnd(names []string) string {
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// AzureStorage is Storage on an account, with the clients made once.
type AzureStorage struct {
	Account azstorage.Account

	once   sync.Once
	err    error
	blobs  *service.Client
	queues *azqueue.ServiceClient
	tables *aztables.ServiceClient
}

func (s *AzureStorage) clients() error {
	s.once.Do(func() {
		if s.blobs, s.err = s.Account.Blobs(); s.err != nil {
			return
		}
		if s.queues, s.err = s.Account.Queues(); s.err != nil {
			return
		}
		s.tables, s.err = s.Account.Tables()
	})
	return s.err
}

// Container reads the container's properties.
func (s *AzureStorage) Container(ctx context.Context, name string) error {
	if err := s.clients(); err != nil {
		return err
	}
	_, err := s.blobs.NewContainerClient(name).GetProperties(ctx, nil)
	return err
}

// Queue reads the queue's properties.
func (s *AzureStorage) Queue(ctx context.Context, name string) error {
	if err := s.clients(); err != nil {
		return err
	}
	_, err := s.queues.NewQueueClient(name).GetProperties(ctx, nil)
	return err
}

// Table reads at most one entity's keys.
func (s *AzureStorage) Table(ctx context.Context, name string) error {
	if err := s.clients(); err != nil {
		return err
	}
	top, sel := int32(1), "PartitionKey"
	pager := s.tables.NewClient(name).NewListEntitiesPager(&aztables.ListEntitiesOptions{Top: &top, Select: &sel})
	_, err := pager.NextPage(ctx)
	return err
}
