// Storage account shared by the Functions host (AzureWebJobsStorage, identity-based), the Flex
// Consumption deployment packages, the shard queue and calstatus's state tables. Shared keys are
// off: everything authenticates with Entra ID, so the identity gets data-plane roles on the account.

param name string
param location string
param tags object

@description('Blob container Flex Consumption deploys packages from.')
param deploymentContainerName string

@description('Principal id of the function app\'s managed identity.')
param principalId string

var queueNames = [
  'sync-shards'
  'sync-shards-poison'
]

var tableNames = [
  'calstatususers'
  'calstatuscycles'
  'calstatussettings'
]

// Built-in roles, least privilege for what the host and calstatus do on this account:
// blob leases, timer schedule state and deployment packages (Owner is what the Functions host
// documents for identity-based AzureWebJobsStorage), queue messages, table entities.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
}

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobService 'blobServices' = {
    name: 'default'

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }

  resource queueService 'queueServices' = {
    name: 'default'

    resource queues 'queues' = [for queueName in queueNames: {
      name: queueName
    }]
  }

  resource tableService 'tableServices' = {
    name: 'default'

    resource tables 'tables' = [for tableName in tableNames: {
      name: tableName
    }]
  }
}

resource roleAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in items(roles): {
  name: guid(account.id, principalId, role.value)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role.value)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainerName}'
