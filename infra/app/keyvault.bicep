// Key Vault for the WNS client secret (read through a Key Vault reference) and the WNS access
// token (written by the token refresher, read with the SDK). Access is by Azure RBAC only;
// app/rbac.bicep grants the roles.
param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109: WNS_CLIENT_SECRET is a Key Vault reference, and Flex Consumption cannot resolve references against a network-restricted vault, even with VNet integration; RBAC (one identity, two secrets) guards it. With vnetEnabled the app's own SDK calls go through a private endpoint.
  // checkov:skip=CKV_AZURE_189: public network access stays on for the same reason.
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    // Flex Consumption cannot resolve Key Vault references against a network-restricted
    // vault, even with VNet integration, so the vault stays reachable and RBAC guards it.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
output id string = vault.id
