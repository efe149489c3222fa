// pushfuncs: everything the Function App needs, in one subscription-scoped deployment.
// Shape follows the Azure-Samples azd quickstarts (resource group + local modules under app/),
// written with plain resources rather than registry modules so that every security property
// is visible in this repository and checked by tests/test_infra.py.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the unique suffix of every resource name.')
param environmentName string

@minLength(1)
@description('Region for all resources. It must offer Flex Consumption: az functionapp list-flexconsumption-locations')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('Entra tenant id of the app registration that holds the WNS (Package SID) credentials.')
param wnsTenantId string

@minLength(1)
@description('Client (application) id of that app registration.')
param wnsClientId string

@description('Object id of the person or pipeline deploying; gets Key Vault Secrets Officer so it can set the WNS client secret. Leave empty to skip.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
@description('Principal type of principalId.')
param principalType string = 'User'

@description('Override the resource group name (default rg-<environmentName>).')
param resourceGroupName string = ''

@description('Override the Function App name (default func-api-<token>).')
param functionAppName string = ''

@allowed([
  '3.11'
  '3.12'
  '3.13'
])
@description('Python version of the Flex Consumption runtime.')
param pythonVersion string = '3.13'

@allowed([
  512
  2048
  4096
])
@description('Memory per instance, in MB.')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound on scale-out. Flex accepts 40 to 1000.')
param maximumInstanceCount int = 100

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
@description('Replication of the storage account that holds queues, tables and the deployment package.')
param storageSkuName string = 'Standard_LRS'

@description('Network isolation: VNet integration for the app, private endpoints and private DNS zones for storage (blob, queue, table) and Key Vault, storage public access off. See infra/README.md.')
param vnetEnabled bool = false

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret stays recoverable. Purge protection makes this binding.')
param keyVaultSoftDeleteRetentionInDays int = 90

@minValue(30)
@maxValue(730)
@description('Log Analytics retention, in days.')
param logRetentionInDays int = 30

@description('Address the alerts email (an Azure Monitor action group); empty creates no action group, and the alerts only show in the portal.')
param alertEmailAddress string = ''

@minValue(1)
@maxValue(100)
@description('Failure-rate alert: percent of WNS answers other than success in 15 minutes that fires it.')
param failureRateAlertPercent int = 20

@minValue(1)
@description('Failure-rate alert: fewest WNS answers in 15 minutes for the rate to count (quiet periods never alert).')
param failureRateAlertMinimumAnswers int = 100

// Names the app reads from settings. The defaults equal local.settings.sample.json,
// so the same code finds the same queues and tables on Azurite and in Azure.
@description('Queue of single-channel deliveries (DELIVERY_QUEUE); "<name>-poison" is created too.')
param deliveryQueueName string = 'wns-delivery'

@description('Queue of fan-out jobs (FANOUT_QUEUE); "<name>-poison" is created too.')
param fanoutQueueName string = 'wns-fanout'

@description('Table of channel registrations (INSTALLATIONS_TABLE).')
param installationsTableName string = 'installations'

@description('Table of notification records (NOTIFICATIONS_TABLE).')
param notificationsTableName string = 'notifications'

@description('Table of secondary indexes over installations (INDEX_TABLE).')
param indexTableName string = 'installationindex'

@minValue(1)
@description('Attempts per delivery before it is recorded as failed (DELIVERY_MAX_ATTEMPTS).')
param deliveryMaxAttempts int = 8

@description('Key Vault secret holding the WNS client secret; set it after provisioning.')
param wnsClientSecretName string = 'wns-client-secret'

@description('Key Vault secret the token refresher writes the WNS access token to (WNS_TOKEN_SECRET_NAME).')
param wnsTokenSecretName string = 'wns-access-token'

@description('NCRONTAB schedule of the token refresh, in UTC (TOKEN_REFRESH_SCHEDULE).')
param tokenRefreshSchedule string = '0 */15 * * * *'

@description('NCRONTAB schedule of the expired-channel sweep, in UTC (SWEEP_SCHEDULE).')
param sweepSchedule string = '0 5 * * * *'

@description('NCRONTAB schedule of the recovery of accepted but unsent notifications, in UTC (OUTBOX_RECOVERY_SCHEDULE).')
param outboxRecoverySchedule string = '30 * * * * *'

@description('NCRONTAB schedule of the deletion of notifications past their retention, in UTC (RETENTION_SCHEDULE).')
param retentionSchedule string = '0 15 * * * *'

@minValue(8)
@description('Days the status, outcome and Idempotency-Key rows of a notification are kept (NOTIFICATION_RETENTION_DAYS).')
param notificationRetentionDays int = 30

@description('Let Windows apps register their own installation with an Entra ID token on /api/me/installations (DEVICE_SIGN_IN_ENABLED).')
param deviceSignInEnabled bool = false

@description('Entra authority whose signing keys verify devices\' tokens (API_AUTHORITY_HOST).')
param apiAuthorityHost string = 'https://login.microsoftonline.com'

@description('Comma-separated audiences of the API\'s tokens: its client id and app ID URI (API_AUDIENCES).')
param apiAudiences string = ''

@description('Comma-separated tenant ids whose users and backends may call the API (API_ALLOWED_TENANTS).')
param apiAllowedTenants string = ''

@description('Entra authority the WNS token is requested from (WNS_AUTHORITY_HOST).')
param wnsAuthorityHost string = 'https://login.microsoftonline.com'

@description('Comma-separated host patterns a channel URI may point at (WNS_ALLOWED_HOSTS).')
param wnsAllowedHosts string = '*.notify.windows.com'

@description('Path of a client certificate to use instead of the secret (WNS_CLIENT_CERTIFICATE_PATH); empty uses the secret.')
param wnsClientCertificatePath string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var appName = empty(functionAppName) ? '${abbrs.webSitesFunctions}api-${resourceToken}' : functionAppName
// Container names must be lower case, and an overridden app name need not be.
var deploymentContainerName = 'app-package-${toLower(take(appName, 32))}-${take(toLower(uniqueString(appName, resourceToken)), 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: empty(resourceGroupName) ? '${abbrs.resourcesResourceGroups}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

// One user-assigned identity for everything the app touches: host storage, the deployment
// container, Key Vault (references and SDK), and App Insights ingestion.
module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    vnetEnabled: vnetEnabled
    deploymentContainerName: deploymentContainerName
    queueNames: [
      deliveryQueueName
      '${deliveryQueueName}-poison'
      fanoutQueueName
      '${fanoutQueueName}-poison'
    ]
    tableNames: [
      installationsTableName
      notificationsTableName
      indexTableName
    ]
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
  }
}

module vnet 'app/vnet.bicep' = if (vnetEnabled) {
  name: 'vnet'
  scope: rg
  params: {
    name: '${abbrs.networkVirtualNetworks}${resourceToken}'
    location: location
    tags: tags
  }
}

// One private endpoint per storage service the app uses and one for the vault, each with its
// private DNS zone (names from environment(), so they follow the cloud).
var privateEndpoints = [
  {
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
  }
  {
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
  }
  {
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
  }
]

module storagePrivateEndpoints 'app/private-endpoint.bicep' = [for endpoint in (vnetEnabled ? privateEndpoints : []): {
  name: 'pep-storage-${endpoint.groupId}'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}${endpoint.groupId}-${resourceToken}'
    location: location
    tags: tags
    virtualNetworkId: vnet.outputs.id
    subnetId: vnet.outputs.privateEndpointSubnetId
    targetResourceId: storage.outputs.id
    groupId: endpoint.groupId
    privateDnsZoneName: endpoint.zone
  }
}]

module keyVaultPrivateEndpoint 'app/private-endpoint.bicep' = if (vnetEnabled) {
  name: 'pep-vault'
  scope: rg
  params: {
    name: '${abbrs.networkPrivateEndpoints}vault-${resourceToken}'
    location: location
    tags: tags
    virtualNetworkId: vnet.outputs.id
    subnetId: vnet.outputs.privateEndpointSubnetId
    targetResourceId: keyVault.outputs.id
    groupId: 'vault'
    privateDnsZoneName: 'privatelink.vaultcore.azure.net'
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  // The roles must exist before the host first starts, or it fails on storage and Key Vault.
  dependsOn: [
    rbac
    storagePrivateEndpoints
  ]
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    virtualNetworkSubnetId: vnetEnabled ? vnet.outputs.appSubnetId : ''
    deliveryQueueName: deliveryQueueName
    fanoutQueueName: fanoutQueueName
    installationsTableName: installationsTableName
    notificationsTableName: notificationsTableName
    indexTableName: indexTableName
    deliveryMaxAttempts: deliveryMaxAttempts
    wnsTenantId: wnsTenantId
    wnsClientId: wnsClientId
    wnsClientSecretName: wnsClientSecretName
    wnsClientCertificatePath: wnsClientCertificatePath
    wnsAuthorityHost: wnsAuthorityHost
    wnsAllowedHosts: wnsAllowedHosts
    wnsTokenSecretName: wnsTokenSecretName
    tokenRefreshSchedule: tokenRefreshSchedule
    sweepSchedule: sweepSchedule
    outboxRecoverySchedule: outboxRecoverySchedule
    retentionSchedule: retentionSchedule
    notificationRetentionDays: notificationRetentionDays
    deviceSignInEnabled: deviceSignInEnabled
    apiAuthorityHost: apiAuthorityHost
    apiAudiences: apiAudiences
    apiAllowedTenants: apiAllowedTenants
  }
}

// What operators look at (a workbook) and what calls them (alerts), over the app's counters in
// Application Insights. See the README, "Workbook and alerts".
module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    name: guid(subscription().id, rg.name, 'pushfuncs-workbook')
    displayName: 'pushfuncs (${environmentName})'
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    storageAccountName: storage.outputs.name
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    domainBlockedAlertName: 'alert-wns-domain-blocked-${resourceToken}'
    failureRateAlertName: 'alert-wns-failure-rate-${resourceToken}'
    alertEmailAddress: alertEmailAddress
    failureRateThresholdPercent: failureRateAlertPercent
    failureRateMinimumAnswers: failureRateAlertMinimumAnswers
  }
}

// azd stores these in the environment (azd env get-values); the manual deploy steps read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URL string = api.outputs.url
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output WNS_CLIENT_SECRET_NAME string = wnsClientSecretName
output AZURE_WORKBOOK_ID string = workbook.outputs.id
