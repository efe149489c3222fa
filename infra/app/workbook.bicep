// The operators' workbook: WNS answers and failures by reason over time, token refreshes,
// fan-out work and the queue backlog, delivery invocation time. Its JSON is workbook.json, kept
// in its own file so tests/test_monitoring.py can parse it and check that every query names a
// metric the app emits (or a function it registers). The two placeholders are filled in here.
param name string
param displayName string
param location string
param tags object = {}
param applicationInsightsName string
param storageAccountName string

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

var serializedData = replace(
  replace(loadTextContent('workbook.json'), '__APP_INSIGHTS_ID__', applicationInsights.id),
  '__QUEUE_SERVICE_ID__',
  '${storage.id}/queueServices/default'
)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: name
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    // Listed under the Application Insights resource's Workbooks, and its queries run there.
    sourceId: applicationInsights.id
    serializedData: serializedData
  }
}

output id string = workbook.id
output name string = workbook.name
