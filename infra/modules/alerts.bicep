// Alerts on what calstatus logs. The handler writes each log line as one JSON object in the trace's
// message (Application Insights table traces); the queries parse it with parse_json(message).
// Each query lives in infra/queries/<alert>.kql so the README and tests use the same text.
//
// Every query reads lines of the timer (SyncTimer), which answers success even when it cannot
// plan: the Functions host drops the Logs of a failed invocation (a failed shard's "shard done"
// never arrives), so what failed is read from the next timer's "cycle summary", which adds up
// every shard's record in Table Storage. No query uses union (log search alert rules may refuse
// it). host.json keeps traces out of sampling, so no counted line is sampled away.

param environmentName string
param location string
param tags object

@description('Resource id of the Application Insights component the alerts query.')
param appInsightsId string

@description('E-mail address notified by the action group. Empty: the action group has no receiver.')
param alertEmail string

@description('Throttled Graph sub-requests (HTTP 429) in 15 minutes above which graph-throttling fires.')
param graphThrottlingThreshold int

@description('Share of users whose calendar is unreadable (no_access) over 30 minutes above which graph-no-access fires.')
param graphNoAccessRatio string = '0.5'

var emailReceivers = empty(alertEmail) ? [] : [
  {
    name: 'calstatus-operators'
    emailAddress: alertEmail
    useCommonAlertSchema: true
  }
]

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-calstatus-${environmentName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'calstatus'
    enabled: true
    emailReceivers: emailReceivers
  }
}

// timeAggregation 'Count' counts the rows a query returns; with a metricMeasureColumn (measure) the
// rule aggregates that column instead. windowSize matches the time filter written in each query.
var rules = [
  {
    name: 'unusual-cycle'
    displayName: 'calstatus (${environmentName}): a cycle changed an unusual share of users, or Graph failed for most'
    description: 'A "cycle summary" changed more than half its users, or Graph could not answer for more than half: a bad configuration or a Graph outage, or a legitimate all-hands meeting (calstatus never blocks it). Look at the cycle\'s "user updated" lines and failures by class; DRY_RUN or the status page\'s pause switch stop writes at once.'
    severity: 2
    query: loadTextContent('../queries/unusual-cycle.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Count'
    measure: {}
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'poison-queue'
    displayName: 'calstatus (${environmentName}): messages in sync-shards-poison'
    description: 'A shard failed maxDequeueCount times and was moved to sync-shards-poison; its users were not synced by that cycle. Look at the failed-invocations alert and the shard records of the cycle (the status page, or table calstatuscycles: Error, ErrorClass).'
    severity: 2
    query: loadTextContent('../queries/poison-queue.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Count'
    measure: {}
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'no-completed-cycle'
    displayName: 'calstatus (${environmentName}): no completed sync cycle in 15 minutes'
    description: 'No "cycle summary" with complete == true was logged in the last 15 minutes: statuses are not being kept in step with calendars (app stopped, timer not firing, or every cycle incomplete).'
    severity: 1
    query: loadTextContent('../queries/no-completed-cycle.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Count'
    measure: {}
    operator: 'LessThan'
    threshold: 1
  }
  {
    name: 'failed-invocations'
    displayName: 'calstatus (${environmentName}): failed shards'
    description: 'A "cycle summary" logged in the last 15 minutes counts failed shards by what failed (shard_errors): shards whose last attempt failed. The queue retries a failed shard; repeated failures end in the poison queue. The failures by class and the shard records (the status page) say why.'
    severity: 2
    query: loadTextContent('../queries/failed-invocations.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Count'
    measure: {}
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'graph-throttling'
    displayName: 'calstatus (${environmentName}): Microsoft Graph throttling'
    description: 'More than ${graphThrottlingThreshold} Graph sub-requests were throttled (429) in the cycles summarised in the last 15 minutes (about three). Cycles slow down and may not complete; check other apps using the same mailboxes, or lower the schedule frequency.'
    severity: 3
    query: loadTextContent('../queries/graph-throttling.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Total'
    measure: {
      metricMeasureColumn: 'throttled'
    }
    operator: 'GreaterThan'
    threshold: graphThrottlingThreshold
  }
  {
    name: 'graph-no-access'
    displayName: 'calstatus (${environmentName}): most calendars unreadable'
    description: 'In the cycles summarised over 30 minutes more than ${graphNoAccessRatio} of the users had calendars Graph refused to read (failure class no_access): admin consent for Calendars.ReadBasic.All was revoked or never granted, or an application access policy excludes them. Open the consent page (CONSENT_PAGE_URL).'
    severity: 1
    query: loadTextContent('../queries/graph-no-access.kql')
    windowSize: 'PT30M'
    timeAggregation: 'Maximum'
    measure: {
      metricMeasureColumn: 'no_access_ratio'
    }
    operator: 'GreaterThan'
    threshold: json(graphNoAccessRatio)
  }
  {
    name: 'mattermost-token-rejected'
    displayName: 'calstatus (${environmentName}): Mattermost rejected the token'
    description: 'Mattermost answered 401/403 to the token in the last 15 minutes: the timer could not list the users (error_class mattermost_auth), or a cycle summary counts users whose change Mattermost refused (failures.mattermost_auth). No status can be read or set. Replace the Key Vault secret mattermost-token with a valid token of an account allowed to edit other users\' statuses.'
    severity: 1
    query: loadTextContent('../queries/mattermost-token-rejected.kql')
    windowSize: 'PT15M'
    timeAggregation: 'Count'
    measure: {}
    operator: 'GreaterThan'
    threshold: 0
  }
]

resource alerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: 'calstatus-${rule.name}-${environmentName}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: rule.windowSize
    autoMitigate: true
    criteria: {
      allOf: [
        union(rule.measure, {
          query: rule.query
          timeAggregation: rule.timeAggregation
          operator: rule.operator
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        })
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

output actionGroupId string = actionGroup.id
output alertNames array = [for (rule, i) in rules: alerts[i].name]
