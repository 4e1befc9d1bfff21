extension microsoftGraphV1

// The Entra ID app registration calstatus reads calendars as, declared with the Microsoft Graph
// Bicep extension. It asks for the application permission Calendars.ReadBasic.All on Microsoft
// Graph (an administrator grants it afterwards on the consent page), redirects admin consent back
// to the function app, and trusts the function app's managed identity as a federated credential:
// the app gets Graph tokens with no secret or certificate to store or rotate.
// Deploying this needs the right to create applications in the tenant (Application.ReadWrite.*
// or a role such as Application Developer) for whoever runs azd up.
//
// With grantGraphPermission the deployment also grants that permission (admin consent, as an app
// role assignment to the app's service principal), so no one has to open the consent page. Only a
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

@description('Grant Calendars.ReadBasic.All (admin consent) during the deployment. Only for a deployer who is Privileged Role Administrator or Global Administrator (or holds AppRoleAssignment.ReadWrite.All); otherwise the deployment fails. Off: an administrator consents on the consent page.')
param grantGraphPermission bool = false

var microsoftGraphAppId = '00000003-0000-0000-c000-000000000000'
// Application permission (app role) Calendars.ReadBasic.All of Microsoft Graph: its id in the
// Microsoft Graph permissions reference,
// https://learn.microsoft.com/en-us/graph/permissions-reference#calendarsreadbasicall
var calendarsReadBasicAllRoleId = '8ba4a692-bc31-4128-9094-475872af8a53'

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  requiredResourceAccess: [
    {
      resourceAppId: microsoftGraphAppId
      resourceAccess: [
        {
          id: calendarsReadBasicAllRoleId
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

// Admin consent for Calendars.ReadBasic.All: an app role assignment of Microsoft Graph's
// Calendars.ReadBasic.All to the app's service principal (what "Grant admin consent" records).
resource calendarsReadBasicAllGrant 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantGraphPermission) {
  principalId: servicePrincipal.id
  resourceId: microsoftGraph.id
  appRoleId: calendarsReadBasicAllRoleId
}

output appId string = app.appId
output objectId string = app.id
output servicePrincipalId string = servicePrincipal.id
