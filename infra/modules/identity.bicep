// The user-assigned managed identity the function app runs as. It reads and writes the storage
// account (host storage, deployment packages, shard queue, state tables), publishes telemetry to
// Application Insights, resolves Key Vault references, and (through a federated credential on
// the app registration) obtains Microsoft Graph tokens without any secret.

@description('Name of the user-assigned managed identity.')
param name string

param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
