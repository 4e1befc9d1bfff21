// Flex Consumption plan and the calstatus function app (Go custom handler, Linux).
// The app settings below are a contract with the code (main.go reads them): the names are checked
// by devtools/bicepcheck against bicepcheck.AppSettingNames. Flex Consumption takes the language
// from functionAppConfig.runtime; FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not
// accepted there, and there is no instrumentation key setting (local auth is off).

param name string
param planName string
param location string

@description('Tags of the plan and the site. The site also gets azd-service-name: azd deploy finds it by that tag (on exactly one resource).')
param tags object

@description('Resource id of the user-assigned managed identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

param storageAccountName string

@description('URL of the blob container Flex Consumption deploys packages from.')
param deploymentContainerUrl string

param appInsightsConnectionString string

@description('Resource id of the Log Analytics workspace that receives the app\'s platform logs (FunctionAppLogs).')
param workspaceId string

@description('Client id (appId) of the app registration calstatus reads calendars as (app setting GRAPH_CLIENT_ID).')
param clientId string

@description('Key Vault secret URI of the app registration\'s certificate (base64 PKCS#12). Empty: the managed identity is the credential (federated with the app registration).')
param clientCertificateSecretUri string = ''

param mattermostUrl string

@description('Key Vault secret URI of the Mattermost token.')
param mattermostTokenSecretUri string

@description('Key Vault secret URI of the /calstatus slash command\'s tokens (TEAM_ID=TOKEN entries). Empty: MATTERMOST_SLASH_TOKEN is empty and the command is refused.')
param mattermostSlashTokenSecretUri string = ''

param syncSchedule string
param syncLookahead string
param tentativeAsBusy string
param showSubject string
param notifyUsers string
param presenceSync bool
param automaticRepliesSync bool
param timeZone string
param logLevel string
param dryRun string
param syncPaused string

param maximumInstanceCount int
param instanceMemoryMB int

// Runtime of a custom handler on Flex Consumption: name 'custom', version '1.0', as in the Bicep
// sample "Flex Consumption plan | Azure Functions custom handlers". A version missing from the
// region's runtime catalog is accepted by ARM and then fails at host start with a bare
// InternalServerError (Azure/Azure-Functions#2666): change these only with the catalog
// (az functionapp list-flexconsumption-runtimes) in hand.
@description('functionAppConfig.runtime.name for a custom handler on Flex Consumption.')
param runtimeName string = 'custom'

@description('functionAppConfig.runtime.version for a custom handler on Flex Consumption (must be in the region\'s runtime catalog).')
param runtimeVersion string = '1.0'

var useCertificate = !empty(clientCertificateSecretUri)

// The Graph credential, one of two settings: a certificate of an existing app registration (a Key
// Vault reference to the certificate's secret, which holds the base64 PKCS#12), or the managed
// identity, which the app registration trusts as a federated identity credential.
var certificateCredentialSetting = {
  name: 'AZURE_CLIENT_CERTIFICATE'
  value: '@Microsoft.KeyVault(SecretUri=${clientCertificateSecretUri})'
}
var managedIdentityCredentialSetting = {
  name: 'AZURE_MANAGED_IDENTITY'
  value: identityClientId
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'calstatus' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      appSettings: [
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        {
          name: 'AZURE_TENANT_ID'
          value: tenant().tenantId
        }
        // Not AZURE_CLIENT_ID: Azure SDKs (DefaultAzureCredential, managed identity) read that
        // name as a user-assigned managed identity's client id; this is an app registration's.
        {
          name: 'GRAPH_CLIENT_ID'
          value: clientId
        }
        useCertificate ? certificateCredentialSetting : managedIdentityCredentialSetting
        {
          name: 'MATTERMOST_URL'
          value: mattermostUrl
        }
        {
          name: 'MATTERMOST_TOKEN'
          value: '@Microsoft.KeyVault(SecretUri=${mattermostTokenSecretUri})'
        }
        {
          name: 'MATTERMOST_SLASH_TOKEN'
          value: empty(mattermostSlashTokenSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${mattermostSlashTokenSecretUri})'
        }
        {
          name: 'SYNC_SCHEDULE'
          value: syncSchedule
        }
        {
          name: 'SYNC_LOOKAHEAD'
          value: syncLookahead
        }
        {
          name: 'TENTATIVE_AS_BUSY'
          value: tentativeAsBusy
        }
        {
          name: 'SHOW_SUBJECT'
          value: showSubject
        }
        {
          name: 'NOTIFY_USERS'
          value: notifyUsers
        }
        {
          name: 'PRESENCE_SYNC'
          value: presenceSync ? 'true' : 'false'
        }
        {
          name: 'AUTOMATIC_REPLIES_SYNC'
          value: automaticRepliesSync ? 'true' : 'false'
        }
        {
          name: 'TIME_ZONE'
          value: timeZone
        }
        {
          name: 'DRY_RUN'
          value: dryRun
        }
        {
          name: 'SYNC_PAUSED'
          value: syncPaused
        }
        {
          name: 'LOG_LEVEL'
          value: logLevel
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: {
        name: runtimeName
        version: runtimeVersion
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
    }
  }
}

// No basic (user name and password) publishing: azd deploys through Flex Consumption's one-deploy
// with Entra ID, so FTP and the SCM site's basic authentication stay off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// The host's own log (table FunctionAppLogs), including the handler's console output, which is
// where a failed invocation's lines go (the host drops its Logs): kept in the workspace apart from
// Application Insights.
resource logsToWorkspace 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'function-logs-to-log-analytics'
  scope: site
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        category: 'FunctionAppLogs'
        enabled: true
      }
    ]
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
