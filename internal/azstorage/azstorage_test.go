package azstorage

import "testing"

func TestIdentityEndpoints(t *testing.T) {
	a := Account{Name: "calstatusabc", ClientID: "00000000-0000-0000-0000-000000000001"}
	if !a.UsesIdentity() || a.TableServiceURL() != "https://calstatusabc.table.core.windows.net" ||
		a.QueueServiceURL() != "https://calstatusabc.queue.core.windows.net" {
		t.Fatalf("endpoints %s %s", a.TableServiceURL(), a.QueueServiceURL())
	}
	if _, err := a.Tables(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Queues(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Blobs(); err != nil || a.BlobServiceURL() != "https://calstatusabc.blob.core.windows.net" {
		t.Fatalf("blob endpoint %s (%v)", a.BlobServiceURL(), err)
	}
	sov := Account{Name: "x", TableURL: "https://x.table.core.usgovcloudapi.net/", QueueURL: "https://x.queue.core.usgovcloudapi.net"}
	if sov.TableServiceURL() != "https://x.table.core.usgovcloudapi.net" || sov.QueueServiceURL() != "https://x.queue.core.usgovcloudapi.net" {
		t.Fatalf("sovereign endpoints %s %s", sov.TableServiceURL(), sov.QueueServiceURL())
	}
	if sov.BlobServiceURL() != "https://x.blob.core.usgovcloudapi.net" {
		t.Fatalf("sovereign blob endpoint %s", sov.BlobServiceURL())
	}
}
