extension microsoftGraphV1

// The Entra ID app registration calstatus reads calendars as, declared with the Microsoft Graph
// Bicep extension. It asks for the application permission Calendars.ReadBasic.All on Microsoft
// Graph, and only with presenceSync or automaticRepliesSync also for Presence.Read.All and
// User.Read.All (an administrator grants them afterwards on the consent page), redirects admin
// consent back to the function app, and trusts the function app's managed identity as a federated credential:
// the app gets Graph tokens with no secret or certificate to store or rotate.
// Deploying this needs the right to create applications in the tenant (Application.ReadWrite.*
// or a role such as Application Developer) for whoever runs azd up.
//
// With grantGraphPermission the deployment also grants those permissions (admin consent: an app
// role assignment each to the app's service principal), so no one has to open the consent page. Only a
// deployer who may grant Microsoft Graph application permissions can: Privileged Role
// Administrator or Global Administrator, or AppRoleAssignment.ReadWrite.All with
// Application.Read.All. For everyone else it stays off and an administrator consents on the page.

@description('Alternate key of the application: deployments with the same uniqueName update the same app.')
param uniqueName string

param displayName string

@description('Admin consent redirect URI, https://<function app host>/api/AdminConsentCallback.')
param redirectUri string

@description('Principal id (object id) of the function app\'s user-assigned managed identity.')
param managedIdentityPrincipalId string

@description('Grant the permissions the app registration asks for (admin consent) during the deployment. Only for a deployer who is Privileged Role Administrator or Global Administrator (or holds AppRoleAssignment.ReadWrite.All); otherwise the deployment fails. Off: an administrator consents on the consent page.')
param grantGraphPermission bool = false

@description('PRESENCE_SYNC is on: also ask for Presence.Read.All and User.Read.All.')
param presenceSync bool = false

@description('AUTOMATIC_REPLIES_SYNC is on: also ask for Presence.Read.All and User.Read.All.')
param automaticRepliesSync bool = false

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
// Application permissions (app roles) of Microsoft Graph, by their ids in the Microsoft Graph
// permissions reference (https://learn.microsoft.com/en-us/graph/permissions-reference): the same
// as internal/config.GraphAppRoleIDs, where their sources are (devtools/bicepcheck compares them).
var calendarsReadBasicAllRoleId = '8ba4a692-bc31-4128-9094-475872af8a53'
// Teams presence and the automatic-reply text (getPresencesByUserId).
var presenceReadAllRoleId = 'a70e0c2d-e793-494c-94c4-118fa0a67f42'
// The Entra object ids presence is keyed by, looked up by email (GET /users?$filter=…): Graph
// takes User.ReadBasic.All for that only delegated, so User.Read.All is the least it accepts.
var userReadAllRoleId = 'df021288-bdef-4463-88db-98f22de89214'

// Least privilege: the presence permissions only while a setting reads presence. One list feeds
// both what the app asks for and what grantGraphPermission grants.
var calendarRoleIds = [
  calendarsReadBasicAllRoleId
]
var calendarAndPresenceRoleIds = [
  calendarsReadBasicAllRoleId
  presenceReadAllRoleId
  userReadAllRoleId
]
var graphAppRoleIds = presenceSync || automaticRepliesSync ? calendarAndPresenceRoleIds : calendarRoleIds

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        for roleId in graphAppRoleIds: {
          id: roleId
          type: 'Role'
        }
      ]
    }
  ]
  web: {
    redirectUris: [
      redirectUri
    ]
  }

  // Name is <application uniqueName>/<credential name>, as the extension expects for this child.
  resource functionIdentity 'federatedIdentityCredentials@v1.0' = {
    name: '${app.uniqueName}/calstatus-function-identity'
    description: 'The calstatus function app\'s user-assigned managed identity'
    issuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
    subject: managedIdentityPrincipalId
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
}

// Microsoft Graph's own service principal in this tenant, found by its well-known appId.
resource microsoftGraph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: microsoftGraphAppId
}

// Admin consent: an app role assignment of each of those Microsoft Graph permissions to the
// app's service principal (what "Grant admin consent" records).
resource graphPermissionGrants 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [
  for roleId in graphAppRoleIds: if (grantGraphPermission) {
    principalId: servicePrincipal.id
    resourceId: microsoftGraph.id
    appRoleId: roleId
  }
]

output appId string = app.appId
output objectId string = app.id
output servicePrincipalId string = servicePrincipal.id
