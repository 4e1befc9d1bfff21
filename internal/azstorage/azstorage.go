// Package azstorage names the storage account calstatus keeps its queue and tables in, the way the
// Functions host does (AzureWebJobsStorage): a connection string, or — in Azure, with no secret —
// the account's name and the managed identity to reach it with.
package azstorage

import (
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// Account is one storage account.
type Account struct {
	// ConnectionString, when set, is used as is (Azurite locally; an account key).
	ConnectionString string
	// Otherwise Name is the account (AzureWebJobsStorage__accountName), reached through a managed
	// identity: ClientID's user-assigned one (AzureWebJobsStorage__clientId), else the system one.
	Name, ClientID string
	// TableURL and QueueURL override the public cloud's endpoints (sovereign clouds):
	// AzureWebJobsStorage__tableServiceUri, __queueServiceUri.
	TableURL, QueueURL string
}

// UsesIdentity reports whether the account is reached with a managed identity.
func (a Account) UsesIdentity() bool { return a.ConnectionString == "" }

func (a Account) credential() (azcore.TokenCredential, error) {
	opts := &azidentity.ManagedIdentityCredentialOptions{}
	if a.ClientID != "" {
		opts.ID = azidentity.ClientID(a.ClientID)
	}
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		return nil, fmt.Errorf("storage account %s: managed identity: %w", a.Name, err)
	}
	return cred, nil
}

// TableServiceURL is the account's Table endpoint when reached with an identity.
func (a Account) TableServiceURL() string {
	if a.TableURL != "" {
		return strings.TrimRight(a.TableURL, "/")
	}
	return "https://" + a.Name + ".table.core.windows.net"
}

// QueueServiceURL is the account's Queue endpoint when reached with an identity.
func (a Account) QueueServiceURL() string {
	if a.QueueURL != "" {
		return strings.TrimRight(a.QueueURL, "/")
	}
	return "https://" + a.Name + ".queue.core.windows.net"
}

// BlobServiceURL is the account's Blob endpoint when reached with an identity: the public cloud's,
// or, in a sovereign cloud (a QueueURL given), the queue endpoint's with "blob" for "queue".
func (a Account) BlobServiceURL() string {
	if a.QueueURL != "" {
		return strings.Replace(strings.TrimRight(a.QueueURL, "/"), ".queue.", ".blob.", 1)
	}
	return "https://" + a.Name + ".blob.core.windows.net"
}

// Blobs returns a Blob service client for the account (the Functions host keeps its leases, timer
// schedules and keys there; calstatus only checks it can reach it).
func (a Account) Blobs() (*service.Client, error) {
	if !a.UsesIdentity() {
		return service.NewClientFromConnectionString(a.ConnectionString, nil)
	}
	cred, err := a.credential()
	if err != nil {
		return nil, err
	}
	return service.NewClient(a.BlobServiceURL(), cred, nil)
}

// Tables returns a Table service client for the account.
func (a Account) Tables() (*aztables.ServiceClient, error) {
	if !a.UsesIdentity() {
		return aztables.NewServiceClientFromConnectionString(a.ConnectionString, nil)
	}
	cred, err := a.credential()
	if err != nil {
		return nil, err
	}
	return aztables.NewServiceClient(a.TableServiceURL(), cred, nil)
}

// Queues returns a Queue service client for the account.
func (a Account) Queues() (*azqueue.ServiceClient, error) {
	if !a.UsesIdentity() {
		return azqueue.NewServiceClientFromConnectionString(a.ConnectionString, nil)
	}
	cred, err := a.credential()
	if err != nil {
		return nil, err
	}
	return azqueue.NewServiceClient(a.QueueServiceURL(), cred, nil)
}
