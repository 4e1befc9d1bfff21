// Key Vault in RBAC mode holding the Mattermost token, the /calstatus slash command's tokens (when
// given) and, for an existing app registration that authenticates with a certificate, that
// certificate. The function app reads them through Key
// Vault references with its managed identity, which gets Key Vault Secrets User on the vault.

param name string
param location string
param tags object

@description('Principal id of the function app\'s managed identity.')
param principalId string

@secure()
@description('Mattermost access token stored as secret mattermost-token.')
param mattermostToken string

@secure()
@description('The /calstatus slash command\'s token in each team (comma-separated TEAM_ID=TOKEN entries), stored as secret mattermost-slash-token. Empty: no secret (the command is refused).')
param mattermostSlashToken string = ''

@description('Resource id of the Log Analytics workspace that receives the vault\'s audit log (AuditEvent: every secret read, by whom).')
param workspaceId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource mattermostTokenSecret 'secrets' = {
    name: 'mattermost-token'
    properties: {
      value: mattermostToken
      contentType: 'Mattermost personal access token or bot token'
    }
  }
}

resource mattermostSlashTokenSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(mattermostSlashToken)) {
  parent: vault
  name: 'mattermost-slash-token'
  properties: {
    value: mattermostSlashToken
    contentType: 'Mattermost slash command tokens (TEAM_ID=TOKEN, comma-separated)'
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// Who read or changed which secret, and who was refused: Key Vault's audit log in Log Analytics
// (table AzureDiagnostics, or AZKVAuditLogs), e.g. to see the function app's reads of the token.
resource auditToWorkspace 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'AuditEvent'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output vaultUri string = vault.properties.vaultUri
// Versionless: a new version of the secret is picked up without redeploying.
output mattermostTokenSecretUri string = vault::mattermostTokenSecret.properties.secretUri
// Versionless too; empty when no slash command token was given (the secret is not deployed). Read
// from the secret resource, not the @secure() parameter: an output that references a secure
// parameter, even inside empty(), trips the linter rule outputs-should-not-contain-secrets.
output mattermostSlashTokenSecretUri string = mattermostSlashTokenSecret.?properties.secretUri ?? ''
