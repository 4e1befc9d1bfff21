// calstatus on Azure: a Go custom handler on Azure Functions Flex Consumption that keeps Mattermost
// statuses in step with Microsoft 365 calendars. Deployed by `azd up` (azure.yaml at the repo
// root): this file creates the resource group rg-<environment> and everything in it, plus (unless
// an existing app registration is given) the Entra ID app registration through the Microsoft
// Graph Bicep extension (infra/bicepconfig.json).
//
// After the first deployment an administrator opens CONSENT_PAGE_URL to grant the application
// permission Calendars.ReadBasic.All (with presenceSync or automaticRepliesSync also
// Presence.Read.All and User.Read.All); until then every calendar read fails with no_access. A
// deployer who may grant them (Privileged Role Administrator) can instead set grantGraphPermission.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment. Names the resource group and the app registration, tags every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource. It must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('The Mattermost server, e.g. https://chat.example.com.')
param mattermostUrl string

@secure()
@minLength(1)
@description('Mattermost access token allowed to edit other users\' statuses (a system admin\'s personal access token, or a bot given the system_admin role). Stored in Key Vault as secret mattermost-token.')
param mattermostToken string

@secure()
@description('The /calstatus slash command\'s token in each team, as comma-separated TEAM_ID=TOKEN entries (a token works only with its own team\'s id), stored in Key Vault as secret mattermost-slash-token: what `calstatus register-command TEAM... FUNCTION_APP_URL` prints (Mattermost makes each team\'s token). Empty: the command is refused.')
param mattermostSlashToken string = ''

@description('Client id of an existing app registration to use instead of creating one (then no Microsoft Graph resources are deployed). It needs the application permission Calendars.ReadBasic.All (with presenceSync or automaticRepliesSync also Presence.Read.All and User.Read.All), admin-consented, and either a federated credential trusting the managed identity (output MANAGED_IDENTITY_PRINCIPAL_ID) or a certificate (clientCertificateSecretName).')
param existingAppClientId string = ''

@description('Grant the app registration\'s permissions (Calendars.ReadBasic.All, and Presence.Read.All and User.Read.All with presenceSync or automaticRepliesSync) during the deployment (admin consent), so no one has to open the consent page. Only for a deployer who is Privileged Role Administrator or Global Administrator (or holds AppRoleAssignment.ReadWrite.All): for anyone else the deployment fails. Only with an app registration this deployment creates (not existingAppClientId).')
param grantGraphPermission bool = false

@description('With existingAppClientId: name of a Key Vault certificate of that app registration, in this deployment\'s vault (output AZURE_KEY_VAULT_NAME). Its secret (base64 PKCS#12) becomes AZURE_CLIENT_CERTIFICATE and the managed identity is not used for Graph. Empty: the managed identity is the credential.')
param clientCertificateSecretName string = ''

@description('Six-field NCRONTAB schedule of SyncTimer.')
param syncSchedule string = '0 */5 * * * *'

@description('How far ahead availability is fetched (Go duration).')
param syncLookahead string = '10m'

@allowed([
  'true'
  'false'
])
@description('Treat tentative meetings as busy.')
param tentativeAsBusy string = 'true'

@allowed([
  'true'
  'false'
])
@description('Show the meeting subject in the custom status (never for private events).')
param showSubject string = 'false'

@allowed([
  'true'
  'false'
])
@description('Send users a direct message when calstatus changes their status.')
param notifyUsers string = 'false'

@description('PRESENCE_SYNC: Do Not Disturb while Teams shows a call or a presentation. On, the app registration also asks for Presence.Read.All and User.Read.All: consent again (or grantGraphPermission).')
param presenceSync bool = false

@description('AUTOMATIC_REPLIES_SYNC: Mattermost\'s out of office while Outlook\'s automatic replies are on. On, the app registration also asks for Presence.Read.All and User.Read.All: consent again (or grantGraphPermission).')
param automaticRepliesSync bool = false

@description('IANA time zone of dates shown to users.')
param timeZone string = 'UTC'

@allowed([
  'DEBUG'
  'INFO'
  'WARN'
  'ERROR'
])
param logLevel string = 'INFO'

@description('DRY_RUN: log every change calstatus would make and write nothing.')
@allowed([
  'true'
  'false'
])
param dryRun string = 'false'

@description('SYNC_PAUSED: stop all writes at once (no cycle, no shard).')
@allowed([
  'true'
  'false'
])
param syncPaused string = 'false'

@minValue(1)
@maxValue(1000)
@description('Most instances the Flex Consumption app scales out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Memory of each instance (MB).')
param instanceMemoryMB int = 2048

@description('E-mail address the alerts notify. Empty: the action group has no receiver (alerts still show in Azure Monitor).')
param alertEmail string = ''

@minValue(1)
@description('Throttled Graph sub-requests (HTTP 429) in 15 minutes above which the graph-throttling alert fires.')
param graphThrottlingThreshold int = 100

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

var createAppRegistration = empty(existingAppClientId)
var useCertificate = !createAppRegistration && !empty(clientCertificateSecretName)

var functionAppName = 'func-calstatus-${resourceToken}'
// The admin consent redirect URI has to be in the app registration before the function app can
// be given the registration's client id, so it is derived from the app's name rather than read
// from the site: <name>.azurewebsites.net is the default host name of a site created without a
// unique default host name (autoGeneratedDomainNameLabelScope, not set here). The Microsoft Graph
// Bicep extension only deploys in Azure's public cloud, where that suffix holds.
var functionAppHostName = '${functionAppName}.azurewebsites.net'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-calstatus-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-calstatus'
    principalId: identity.outputs.principalId
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: 'log-calstatus-${resourceToken}'
    appInsightsName: 'appi-calstatus-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
    mattermostToken: mattermostToken
    mattermostSlashToken: mattermostSlashToken
    workspaceId: monitoring.outputs.workspaceId
  }
}

module appRegistration 'modules/app-registration.bicep' = if (createAppRegistration) {
  name: 'app-registration'
  scope: rg
  params: {
    uniqueName: 'calstatus-${environmentName}-${resourceToken}'
    displayName: 'calstatus (${environmentName})'
    redirectUri: 'https://${functionAppHostName}/api/AdminConsentCallback'
    managedIdentityPrincipalId: identity.outputs.principalId
    grantGraphPermission: grantGraphPermission
    presenceSync: presenceSync
    automaticRepliesSync: automaticRepliesSync
  }
}

// The module is conditional: its outputs are read with .? (a plain access draws BCP318), and are
// null exactly when existingAppClientId is given.
var clientId = appRegistration.?outputs.appId ?? existingAppClientId

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-calstatus-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    appInsightsConnectionString: monitoring.outputs.connectionString
    workspaceId: monitoring.outputs.workspaceId
    clientId: clientId
    // A certificate's secret has the certificate's name; versionless, so a renewed one is used.
    clientCertificateSecretUri: useCertificate ? '${keyVault.outputs.vaultUri}secrets/${clientCertificateSecretName}' : ''
    mattermostUrl: mattermostUrl
    mattermostTokenSecretUri: keyVault.outputs.mattermostTokenSecretUri
    mattermostSlashTokenSecretUri: keyVault.outputs.mattermostSlashTokenSecretUri
    syncSchedule: syncSchedule
    syncLookahead: syncLookahead
    tentativeAsBusy: tentativeAsBusy
    showSubject: showSubject
    notifyUsers: notifyUsers
    presenceSync: presenceSync
    automaticRepliesSync: automaticRepliesSync
    timeZone: timeZone
    logLevel: logLevel
    dryRun: dryRun
    syncPaused: syncPaused
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
    graphThrottlingThreshold: graphThrottlingThreshold
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

var functionAppUrl = 'https://${functionApp.outputs.defaultHostName}'

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionAppUrl
output CONSENT_PAGE_URL string = '${functionAppUrl}/api/AdminConsent'
output STATUS_PAGE_URL string = '${functionAppUrl}/api/Status'
// The /calstatus slash command's request URL (calstatus register-command, or Integrations → Slash Commands).
output SLASH_COMMAND_URL string = '${functionAppUrl}/api/SlashCommand'
// The app registration's client id. Not AZURE_CLIENT_ID: azd gives its environment's values to
// hooks, where Azure SDKs would read that name as a managed identity's client id.
output GRAPH_CLIENT_ID string = clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
// For an existing app registration: the subject of the federated credential it needs.
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
