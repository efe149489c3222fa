// The virtual network of the network-isolated option (vnetEnabled): one subnet for the Flex
// Consumption app's outbound VNet integration (delegated to Microsoft.App/environments, as Flex
// requires) and one for the private endpoints of storage and Key Vault.
param name string
param location string
param tags object = {}
param addressPrefix string = '10.0.0.0/16'
param privateEndpointSubnetPrefix string = '10.0.1.0/24'
param appSubnetPrefix string = '10.0.2.0/24'

var privateEndpointSubnetName = 'private-endpoints'
var appSubnetName = 'app'

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: privateEndpointSubnetName
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          privateLinkServiceNetworkPolicies: 'Enabled'
        }
      }
      {
        name: appSubnetName
        properties: {
          addressPrefix: appSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          privateLinkServiceNetworkPolicies: 'Enabled'
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

output id string = vnet.id
output privateEndpointSubnetId string = '${vnet.id}/subnets/${privateEndpointSubnetName}'
output appSubnetId string = '${vnet.id}/subnets/${appSubnetName}'
