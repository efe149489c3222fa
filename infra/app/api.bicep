// The Function App on a Flex Consumption plan, with every app setting pushfuncs reads.
//
// Setting names match local.settings.sample.json (tests/test_infra.py keeps them equal), except:
// - AzureWebJobsStorage is identity-based here (AzureWebJobsStorage__*), not a connection string;
// - settings that exist only in Azure: AZURE_CLIENT_ID and the two APPLICATIONINSIGHTS_* ones;
// - settings that exist only locally are absent: FUNCTIONS_WORKER_RUNTIME (Flex takes the
//   runtime from functionAppConfig.runtime and rejects the setting), IDENTITY_ENDPOINT and
//   IDENTITY_HEADER (the platform sets them), SSL_CERT_FILE and REQUESTS_CA_BUNDLE (local CA).
param name string
param planName string
param location string
param tags object = {}
param identityName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param keyVaultName string
param pythonVersion string = '3.13'
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 100
@description('Subnet for outbound VNet integration (delegated to Microsoft.App/environments); empty: none.')
param virtualNetworkSubnetId string = ''

param deliveryQueueName string
param fanoutQueueName string
param installationsTableName string
param notificationsTableName string
param indexTableName string
param deliveryMaxAttempts int
param wnsTenantId string
param wnsClientId string
param wnsClientSecretName string
param wnsClientCertificatePath string
param wnsAuthorityHost string
param wnsAllowedHosts string
param wnsTokenSecretName string
param tokenRefreshSchedule string
param sweepSchedule string
param outboxRecoverySchedule string
param retentionSchedule string
param notificationRetentionDays int
param deviceSignInEnabled bool
param apiAuthorityHost string
param apiAudiences string
param apiAllowedTenants string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  // checkov:skip=CKV_AZURE_225: zone redundancy of a Flex Consumption plan is offered only in some regions; a deployment elsewhere would fail.
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  // checkov:skip=CKV_AZURE_222: the app is the public API: Windows devices register and backends send from the internet; keys and Entra tokens guard it (README, Security).
  // checkov:skip=CKV_AZURE_17: callers are Windows devices and backends that authenticate with function keys or Entra tokens, not TLS client certificates.
  // checkov:skip=CKV_AZURE_212: a Flex Consumption app has no fixed worker count; it scales per function from zero (always-ready instances are a cost choice, not a failover setting).
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Outbound traffic into the VNet (storage and Key Vault private endpoints) when network-isolated.
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    // Without this the platform resolves Key Vault references with a system-assigned
    // identity, which this app does not have, and WNS_CLIENT_SECRET stays a literal.
    keyVaultReferenceIdentity: identity.id
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      http20Enabled: true
      healthCheckPath: '/api/health'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // Host storage through the user-assigned identity, never a connection string. The
        // account-name form is the one pushfuncs/config.py reads too; it assumes the public
        // cloud's endpoint suffix (see infra/README.md for sovereign clouds).
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storage.name
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        // DefaultAzureCredential picks the user-assigned identity by this client id.
        {
          name: 'AZURE_CLIENT_ID'
          value: identity.properties.clientId
        }
        // Read by the Functions host and by the app, which exports its own counters with them
        // (pushfuncs/telemetry.py). No OpenTelemetry settings: host.json keeps the host's
        // default telemetry mode, and the worker's own OpenTelemetry switches stay off.
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        {
          name: 'DELIVERY_QUEUE'
          value: deliveryQueueName
        }
        {
          name: 'FANOUT_QUEUE'
          value: fanoutQueueName
        }
        {
          name: 'INSTALLATIONS_TABLE'
          value: installationsTableName
        }
        {
          name: 'NOTIFICATIONS_TABLE'
          value: notificationsTableName
        }
        {
          name: 'INDEX_TABLE'
          value: indexTableName
        }
        {
          name: 'DELIVERY_MAX_ATTEMPTS'
          value: string(deliveryMaxAttempts)
        }
        {
          name: 'WNS_TENANT_ID'
          value: wnsTenantId
        }
        {
          name: 'WNS_CLIENT_ID'
          value: wnsClientId
        }
        // Resolved by the platform with keyVaultReferenceIdentity. Until the secret is set
        // (see infra/README.md) the app sees this literal text and must refuse to start work.
        {
          name: 'WNS_CLIENT_SECRET'
          value: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=${wnsClientSecretName})'
        }
        {
          name: 'WNS_CLIENT_CERTIFICATE_PATH'
          value: wnsClientCertificatePath
        }
        {
          name: 'WNS_AUTHORITY_HOST'
          value: wnsAuthorityHost
        }
        {
          name: 'WNS_ALLOWED_HOSTS'
          value: wnsAllowedHosts
        }
        {
          name: 'KEY_VAULT_URL'
          value: vault.properties.vaultUri
        }
        // Read with the SDK, never as a Key Vault reference: references can be a day stale.
        {
          name: 'WNS_TOKEN_SECRET_NAME'
          value: wnsTokenSecretName
        }
        {
          name: 'TOKEN_REFRESH_SCHEDULE'
          value: tokenRefreshSchedule
        }
        {
          name: 'SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'OUTBOX_RECOVERY_SCHEDULE'
          value: outboxRecoverySchedule
        }
        {
          name: 'RETENTION_SCHEDULE'
          value: retentionSchedule
        }
        {
          name: 'NOTIFICATION_RETENTION_DAYS'
          value: string(notificationRetentionDays)
        }
        // Devices' Entra ID sign-in on /api/me/installations (infra/README.md: the app registration).
        {
          name: 'DEVICE_SIGN_IN_ENABLED'
          value: string(deviceSignInEnabled)
        }
        {
          name: 'API_AUTHORITY_HOST'
          value: apiAuthorityHost
        }
        {
          name: 'API_AUDIENCES'
          value: apiAudiences
        }
        {
          name: 'API_ALLOWED_TENANTS'
          value: apiAllowedTenants
        }
      ]
    }
  }
}

// Core Tools publishes to Flex with an Entra token, so basic (publishing profile) auth is off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
