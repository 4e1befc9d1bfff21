package statuspage

import (
	"html/template"
	"strings"
	"time"
)

// view is what the template shows: the report, its charts and the cycles newest first.
type view struct {
	Report
	Charts []chart
	Rows   []Cycle
}

func renderHTML(rep Report) (string, error) {
	v := view{Report: rep, Charts: charts(rep)}
	for i := len(rep.Cycles) - 1; i >= 0; i-- {
		v.Rows = append(v.Rows, rep.Cycles[i])
	}
	var b strings.Builder
	if err := page.Execute(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"num":         num,
	"utc":         utc,
	"seconds":     seconds,
	"failures":    failureText,
	"byCount":     byCount,
	"total":       total,
	"perShard":    func() int { return NamedPerShard },
	"maxAffected": func() int { return MaxAffected },
	"classes":     classLines,
	"users":       func(n int) string { return plural(n, "user") },
	"plural":      plural,
	"stateText": func(state string) string {
		switch state {
		case "ok":
			return "✓ ok"
		case "problem":
			return "✗ problem"
		}
		return "– not checked"
	},
	"ago": func(now, t time.Time) string { return ago(max(0, now.Sub(t))) },
	"age": func(s int) string {
		if s <= 0 {
			return "—"
		}
		return span(time.Duration(s) * time.Second)
	},
}).Parse(pageTemplate))

const pageTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="60">
<title>calstatus: {{.Headline.Text}}</title>
<style>
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#202124;background:#f8f9fa}
body{margin:0 auto;max-width:1000px;padding:16px 20px 40px}
h1{font-size:20px;margin:8px 0 12px}
h1 small{font-weight:normal;color:#5f6368;font-size:13px;margin-left:8px}
h2{font-size:15px;margin:0 0 8px}
.headline{border-left:6px solid;border-radius:6px;padding:12px 16px;margin-bottom:16px;font-size:18px;font-weight:600}
.headline ul{margin:6px 0 0;padding-left:20px;font-size:14px;font-weight:normal}
.healthy{background:#e6f4ea;border-color:#1e8e3e}
.attention{background:#fce8e6;border-color:#d93025}
.stale{background:#fef7e0;border-color:#f29900}
.no_data{background:#f1f3f4;border-color:#80868b}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px;margin-bottom:16px}
.card,.panel{background:#fff;border:1px solid #dadce0;border-radius:8px;padding:12px 16px}
.panel{margin-bottom:12px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;margin:0;font-size:14px}
dt{color:#5f6368}
dd{margin:0;font-variant-numeric:tabular-nums}
.muted{color:#5f6368;font-size:13px}
.bad{color:#d93025;font-weight:600}
.charts{display:grid;grid-template-columns:1fr;gap:12px;margin-bottom:12px}
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#e8eaed;stroke-width:1}
svg .axis{stroke:#9aa0a6;stroke-width:1}
svg text{font-size:11px;fill:#5f6368}
svg .yl{text-anchor:end}
svg .xl,svg .at{text-anchor:middle}
svg .at{fill:#3c4043}
svg .bar:hover rect{opacity:.75}
.b{fill:#4e79a7}.z{fill:#c8ccd0}
.c0{fill:#e15759;background:#e15759}.c1{fill:#f28e2b;background:#f28e2b}.c2{fill:#76b7b2;background:#76b7b2}.c3{fill:#59a14f;background:#59a14f}
.c4{fill:#edc948;background:#edc948}.c5{fill:#b07aa1;background:#b07aa1}.c6{fill:#ff9da7;background:#ff9da7}.c7{fill:#9c755f;background:#9c755f}
.legend{list-style:none;margin:6px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #e8eaed;vertical-align:top}
th{color:#5f6368;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.legend-classes{margin:8px 0 0;font-size:12px;color:#5f6368}
.legend-classes dt{color:#3c4043}
td.err{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
code{font-size:12px;overflow-wrap:anywhere}
summary{cursor:pointer;font-weight:600;font-size:15px}
footer{color:#5f6368;font-size:12px;margin-top:16px}
#setup summary .muted{font-weight:normal}
table.setup td.state{white-space:nowrap;font-weight:600}
table.setup td.title{white-space:nowrap}
tr.ok td.state{color:#1e8e3e}
tr.problem td.state{color:#d93025}
tr.problem{background:#fef6f5}
tr.not_checked td.state,tr.not_checked td{color:#5f6368}
.fix{margin-top:4px;color:#202124}
</style>
</head>
<body>
<h1>calstatus sync status<small>{{utc .GeneratedAt}}</small></h1>

<div class="headline {{.Headline.State}}" id="headline">{{.Headline.Text}}
{{- if .Headline.Notes}}<ul>{{range .Headline.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}</div>
{{- if .PausedBySetting}}
<p class="switch" id="pause-switch">Paused by the <code>SYNC_PAUSED</code> app setting, which this page cannot change. To resume,
set <code>SYNC_PAUSED</code> to <code>false</code> (or delete it) in the Function App's configuration (Settings &gt; Environment variables),
or in <code>local.settings.json</code> when it runs locally.</p>
{{- else if .Switchable}}
<form method="post" class="switch" id="pause-switch">
{{- if .PausedFromPage}}<button type="submit" name="action" value="resume">Resume the sync</button> Paused from this page{{with .PausedSince}} since {{utc .}}{{end}}. Nothing is written while paused.
{{- else}}<button type="submit" name="action" value="pause">Pause the sync</button> Stops every write at once: no cycle, no shard.{{end}}
</form>
{{- end}}
{{- with .Setup}}

<section class="panel" id="setup">
<details{{if not .OK}} open{{end}}><summary>Setup:
{{- if not .Lines}} not checked yet <span class="muted">(the checks are running: reload in a few seconds)</span>
{{- else if .OK}} all {{len .Lines}} checks pass
{{- else}} <span class="bad">{{if .Problems}}{{plural .Problems "problem"}}{{end}}{{if and .Problems .NotChecked}}, {{end}}{{if .NotChecked}}{{.NotChecked}} not checked{{end}}</span> of {{len .Lines}} checks{{end}}
{{- if .Lines}} <span class="muted">(checked {{utc .CheckedAt}}; run at most once a minute)</span>{{end}}</summary>
{{- if .Lines}}
<table class="setup">
<tbody>
{{- range .Lines}}
<tr class="{{.State}}" id="setup-{{.ID}}"><td class="state">{{stateText .State}}</td><td class="title">{{.Title}}</td><td>{{.Detail}}{{if .Fix}}<div class="fix"><b>Fix:</b> {{.Fix}}</div>{{end}}</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
</details>
</section>
{{- end}}
{{- if not .StartError}}

<div class="cards">
<section class="card" id="last-cycle"><h2>Last cycle</h2>
{{- with .LastCycle}}
<dl>
<dt>Started</dt><dd>{{utc .Started}} ({{ago $.GeneratedAt .Started}})</dd>
<dt>Cycle</dt><dd><code>{{.ID}}</code></dd>
<dt>Users</dt><dd>{{num .Users}}</dd>
<dt>Shards</dt><dd>{{num .ShardsOK}} ok, {{if .ShardsFailed}}<span class="bad">{{num .ShardsFailed}} failed</span>{{else}}0 failed{{end}}, {{num .ShardsMissing}} missing of {{num .Shards}}</dd>
<dt>Changes</dt><dd>{{num .Changed}}</dd>
<dt>Failures</dt><dd>{{if .Failed}}<span class="bad">{{num .Failed}}</span>: {{failures .Failures}}{{else}}none{{end}}</dd>
<dt>Graph calls</dt><dd>{{num .GraphCalls}} ({{num .Throttled}} throttled, {{num .Retries}} retried)</dd>
{{- with .PresenceFailures}}
<dt>Teams presence</dt><dd><span class="bad">not read for {{users (total .)}}</span>: {{failures .}}{{if index . "forbidden"}} — <code>Presence.Read.All</code> or <code>User.Read.All</code> is not granted: consent again on the consent page. Their calendars are synced; calls and automatic replies are not{{end}}</dd>
{{- end}}
<dt>Duration</dt><dd>{{seconds .DurationMs}}</dd>
<dt>Complete</dt><dd>{{if .Complete}}yes{{else}}no{{end}}</dd>
</dl>
{{- else}}
<p class="muted">No cycle in the last 24 hours.</p>
{{- end}}
</section>

<section class="card" id="queue"><h2>Shard queue</h2>
{{- with .Queue}}
<dl>
<dt>Waiting</dt><dd>{{num .Depth}}</dd>
<dt>Poison queue</dt><dd>{{if .PoisonDepth}}<span class="bad">{{num .PoisonDepth}}</span>{{else}}0{{end}}</dd>
<dt>Oldest message</dt><dd>{{age .OldestMessageAge}}</dd>
</dl>
{{- else}}
<p class="muted">Not available.</p>
{{- end}}
</section>

<section class="card" id="consent"><h2>Admin consent</h2>
{{- with .Consent}}{{if .Recorded}}
<dl>
<dt>Tenant</dt><dd><code>{{.Tenant}}</code></dd>
<dt>Recorded</dt><dd>{{if .At}}{{utc .At.UTC}}{{else}}—{{end}}</dd>
<dt>Check</dt><dd>{{if .ProbeOK}}{{.ProbeText}}{{else}}<span class="bad">{{.ProbeText}}</span>{{end}}</dd>
<dt>Checked</dt><dd>{{if .ProbedAt}}{{utc .ProbedAt.UTC}}{{else}}—{{end}}</dd>
</dl>
{{- else}}
<p>No admin consent recorded by calstatus's consent page.</p>
{{- end}}{{else}}
<p class="muted">Not available.</p>
{{- end}}
<p class="muted"><a href="AdminConsent">Consent page</a>: grant the admin consent, or check Graph access again.</p>
</section>
</div>

<section class="panel" id="affected"><h2>Who is affected</h2>
{{- with .Affected}}
<p id="user-settings">{{with .Settings}}calstatus off: {{users .Off}}; paused: {{users .Paused}} <span class="muted">(their own choice, with the /calstatus command)</span>{{else}}calstatus off, paused: <span class="muted">not available</span>{{end}}</p>
{{- if .Cycle}}
<p>{{if .Failed}}<span class="bad">{{users .Failed}} failing</span>{{else}}No user failing{{end}} in the last cycle with reports, started {{utc .CycleStarted.UTC}} ({{ago $.GeneratedAt .CycleStarted.UTC}}){{if lt .ShardsReported .Shards}}, {{.ShardsReported}} of {{.Shards}} shards reported so far{{end}}.</p>
{{- if .Failing}}
<table>
<thead><tr><th>User</th><th>Class</th><th>Failing since</th></tr></thead>
<tbody>
{{- range .Failing}}
<tr><td>{{.User}}</td><td><code>{{.Class}}</code></td><td>{{utc .Since}} ({{ago $.GeneratedAt .Since}})</td></tr>
{{- end}}
</tbody>
</table>
{{- end}}
{{- if .Unlisted}}
<p>{{num (total .Unlisted)}} more counted, not named here: {{failures .Unlisted}}.</p>
{{- end}}
{{- if .Failed}}
<p class="muted">A shard names at most {{perShard}} of its failing users; this list shows at most {{maxAffected}}. "Failing since" is the start of the earliest of the consecutive recent cycles that named the user as failing.</p>
{{- end}}
{{- with classes .Classes}}
<dl class="legend-classes">
{{- range .}}<dt><code>{{.Class}}</code></dt><dd>{{.Help}}</dd>{{end}}
</dl>
{{- end}}
{{- else}}
<p class="muted">No cycle with shard reports in the last 24 hours.</p>
{{- end}}
{{- end}}
</section>

<div class="charts">
{{- range $c := .Charts}}
<section class="panel" id="{{.ID}}"><h2>{{.Title}}</h2>
{{- if .Empty}}
<p class="muted">{{.Empty}}</p>
{{- else}}
<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="{{.Title}}">
<title>{{.Title}}</title>
{{- range .YTicks}}
<line class="grid" x1="{{$c.Plot.Left}}" x2="{{$c.Plot.Right}}" y1="{{.Pos}}" y2="{{.Pos}}"/><text class="yl" x="{{$c.YTickX}}" y="{{.Pos}}" dy="4">{{.Label}}</text>
{{- end}}
{{- range .XTicks}}
<line class="grid" x1="{{.Pos}}" x2="{{.Pos}}" y1="{{$c.Plot.Top}}" y2="{{$c.Plot.Bottom}}"/><text class="xl" x="{{.Pos}}" y="{{$c.XTickY}}">{{.Label}}</text>
{{- end}}
<line class="axis" x1="{{.Plot.Left}}" x2="{{.Plot.Right}}" y1="{{.Plot.Bottom}}" y2="{{.Plot.Bottom}}"/>
<line class="axis" x1="{{.Plot.Left}}" x2="{{.Plot.Left}}" y1="{{.Plot.Top}}" y2="{{.Plot.Bottom}}"/>
<text class="at" transform="translate({{.YTitleX}},{{.YTitleY}}) rotate(-90)">{{.YLabel}}</text>
<text class="at" x="{{.XTitleX}}" y="{{.XTitleY}}">time (UTC)</text>
{{- range .Bars}}
<g class="bar"><title>{{.Title}}</title>{{range .Segs}}<rect class="{{.Class}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"/>{{end}}</g>
{{- end}}
</svg>
{{- if .Legend}}
<ul class="legend">{{range .Legend}}<li><span class="{{.Class}}"></span>{{.Label}}</li>{{end}}</ul>
{{- end}}
{{- if .Note}}
<p class="muted">{{.Note}}</p>
{{- end}}
{{- end}}
</section>
{{- end}}
</div>

<section class="panel" id="errors"><h2>Recent errors</h2>
{{- if .RecentErrors}}
<table>
<thead><tr><th>Time</th><th>Cycle</th><th class="n">Shard</th><th class="n">Attempt</th><th>Class</th><th>Error</th></tr></thead>
<tbody>
{{- range .RecentErrors}}
<tr><td>{{utc .Time}}</td><td><code>{{.Cycle}}</code></td><td class="n">{{.Shard}}</td><td class="n">{{.Attempt}}</td><td>{{.ErrorClass}}</td><td class="err">{{.Error}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="muted">No failed shard in the last 24 hours.</p>
{{- end}}
</section>

<section class="panel" id="cycles">
<details><summary>Cycles of the last 24 hours ({{len .Rows}})</summary>
{{- if .Rows}}
<table>
<thead><tr><th>Started</th><th class="n">Users</th><th class="n">Shards ok</th><th class="n">Failed</th><th class="n">Missing</th><th class="n">Changes</th><th class="n">Users failed</th><th>Failures by class</th><th class="n">Graph calls</th><th class="n">Throttled</th><th class="n">Duration</th></tr></thead>
<tbody>
{{- range .Rows}}
<tr id="cycle-{{.ID}}"><td title="{{.ID}}">{{utc .Started}}</td><td class="n">{{num .Users}}</td><td class="n">{{num .ShardsOK}}</td><td class="n">{{num .ShardsFailed}}</td><td class="n">{{num .ShardsMissing}}</td><td class="n">{{num .Changed}}</td><td class="n">{{num .Failed}}</td><td>{{failures .Failures}}</td><td class="n">{{num .GraphCalls}}</td><td class="n">{{num .Throttled}}</td><td class="n">{{seconds .DurationMs}}</td></tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p class="muted">None.</p>
{{- end}}
</details>
</section>

{{- end}}

{{- if .Problems}}
<section class="panel" id="problems"><h2>Not shown</h2><ul>{{range .Problems}}<li>{{.}}</li>{{end}}</ul><p class="muted">Details are in the function's logs.</p></section>
{{- end}}

<footer>Times in UTC; the headline judges by a sync period of {{age .IntervalS}}. The page reloads every minute.
The same data as JSON: add <code>format=json</code> to this page's query string.</footer>
</body>
</html>
`
