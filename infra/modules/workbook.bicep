// An Azure Monitor workbook on the Application Insights component: one row per sync cycle (users,
// changes, Graph calls, failures, duration), the same over time, and failures by class. Its
// queries are infra/queries/cycles.kql and infra/queries/failures-by-class.kql.

param environmentName string
param location string
param tags object

@description('Resource id of the Application Insights component the workbook queries.')
param appInsightsId string

var cyclesQuery = loadTextContent('../queries/cycles.kql')
var failuresByClassQuery = loadTextContent('../queries/failures-by-class.kql')

var workbookContent = {
  version: 'Notebook/1.0'
  items: [
    {
      type: 1
      name: 'about'
      content: {
        json: '## calstatus sync cycles (${environmentName})\nEach row is one cycle of SyncTimer and its shards, from the "cycle summary" log line. A cycle is complete when every shard reported. Failures are per user (calendar not found, no access, Mattermost refused a write, ...) and per failed shard attempt (error class).'
      }
    }
    {
      type: 3
      name: 'cycles'
      content: {
        version: 'KqlItem/1.0'
        title: 'Cycles, last 24 hours'
        query: cyclesQuery
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
    }
    {
      type: 3
      name: 'cycle-activity'
      content: {
        version: 'KqlItem/1.0'
        title: 'Users, changes, failures and Graph calls per cycle'
        query: '${cyclesQuery}\n| project timestamp, users, changed, failed, graph_calls, throttled'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      name: 'cycle-duration'
      content: {
        version: 'KqlItem/1.0'
        title: 'Cycle duration (ms)'
        query: '${cyclesQuery}\n| project timestamp, duration_ms'
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'timechart'
      }
    }
    {
      type: 3
      name: 'failures-by-class'
      content: {
        version: 'KqlItem/1.0'
        title: 'Failures by class, per cycle'
        query: failuresByClassQuery
        size: 0
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: 'table'
      }
    }
  ]
  isLocked: false
  fallbackResourceIds: [
    appInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, 'calstatus-cycles', environmentName)
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'calstatus sync cycles (${environmentName})'
    category: 'workbook'
    sourceId: toLower(appInsightsId)
    serializedData: string(workbookContent)
    version: '1.0'
  }
}

output id string = workbook.id
