// Storage account for the Functions host (keys, timer locks), the Flex deployment package,
// and the app's queues and tables. Reached only with Entra identities: shared keys are off,
// so no connection string with an AccountKey can work against it.
param name string
param location string
param tags object = {}
param skuName string = 'Standard_LRS'
param deploymentContainerName string
param queueNames array
param tableNames array
@description('Network-isolated: no public endpoint; the app reaches the account through private endpoints.')
param vnetEnabled bool = false

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  // checkov:skip=CKV_AZURE_35: defaultAction is 'Deny' when vnetEnabled; Checkov compares literals and cannot read the parameter (tests/test_infra.py checks both branches). Without a VNet a Flex app has no fixed outbound address to allow, so the default must stay 'Allow' there.
  // checkov:skip=CKV_AZURE_59: publicNetworkAccess is 'Disabled' when vnetEnabled, as above.
  // checkov:skip=CKV_AZURE_206: skuName is a parameter (Standard_LRS or Standard_ZRS); ZRS is not offered in every Flex Consumption region, so LRS stays the default. Queued work is re-driven from the status rows, not from replicas.
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    publicNetworkAccess: vnetEnabled ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: vnetEnabled ? 'Deny' : 'Allow'
    }
  }
}

// Child resources are declared with `parent:` rather than nested inside the account: the
// parser the tests use keeps only the last of several nested siblings.
resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Flex Consumption deploys the app package from this container, authenticating as the app's
// identity (functionAppConfig.deployment.storage in app/api.bicep).
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queueNames: {
  parent: queueService
  name: queueName
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

output name string = storage.name
output id string = storage.id
