// Two log search alerts over the app's counters in Application Insights (customMetrics), and
// the action group they notify. The queries are in alert-*.kql, kept in their own files so
// tests/test_monitoring.py can check that they name metrics the app emits.
//
// - Domain Blocked: WNS blocked our sending identity, and the app has suspended all sending
//   until an operator resumes it (README, "Suspended sending after 410 Domain Blocked").
// - Failure rate: the share of WNS answers other than success, over a window with enough sends.
param location string
param tags object = {}
param applicationInsightsName string
param actionGroupName string
param domainBlockedAlertName string
param failureRateAlertName string

@description('Address the action group emails; empty creates no action group and the alerts notify no one (they still fire in the portal).')
param alertEmailAddress string = ''

@minValue(1)
@maxValue(100)
@description('Failure-rate alert: percent of WNS answers other than success in the window that fires it.')
param failureRateThresholdPercent int = 20

@minValue(1)
@description('Failure-rate alert: fewest WNS answers in the window for the rate to count.')
param failureRateMinimumAnswers int = 100

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmailAddress)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'pushfuncs'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actionGroups = empty(alertEmailAddress) ? [] : [actionGroup.id]

resource domainBlockedAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: domainBlockedAlertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'pushfuncs: WNS 410 Domain Blocked, sending suspended'
    description: 'WNS answered 410 Domain Blocked: it blocks the app\'s sending identity, and pushfuncs has suspended all sending until an operator resumes it. Fix the cause with WNS, then POST /api/sending/resume with the master key (README).'
    severity: 0
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    // The window overlaps three evaluations so a count exported or ingested late is still seen;
    // the mute keeps those overlapping evaluations from notifying three times.
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    muteActionsDuration: 'PT15M'
    // The condition passes once (sending stops), so auto-resolving would close the alert
    // while sending is still suspended: it stays open until someone closes it.
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: loadTextContent('alert-domain-blocked.kql')
          timeAggregation: 'Total'
          metricMeasureColumn: 'blocked'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

resource failureRateAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: failureRateAlertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'pushfuncs: WNS failure rate over ${failureRateThresholdPercent}%'
    description: 'More than ${failureRateThresholdPercent}% of WNS answers in 15 minutes (at least ${failureRateMinimumAnswers} answers) were not success. The workbook\'s "Failures by reason" shows which.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('alert-failure-rate.kql'), '__MINIMUM_ANSWERS__', string(failureRateMinimumAnswers))
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failurePercent'
          operator: 'GreaterThan'
          threshold: failureRateThresholdPercent
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}

output actionGroupId string = empty(alertEmailAddress) ? '' : actionGroup.id
output domainBlockedAlertName string = domainBlockedAlert.name
output failureRateAlertName string = failureRateAlert.name
