package statuspage

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// A chart is a bar chart over the window, one bar per cycle at its start time, drawn as inline SVG
// by the page's template (which escapes every text in it).
type chart struct {
	ID, Title, YLabel string
	// Empty, when set, replaces the chart (no cycles to draw).
	Empty string
	// Note is said under the chart (e.g. no failures at all).
	Note   string
	W, H   int
	Plot   box
	YTicks []tick
	XTicks []tick
	// YTitleX and YTitleY place the rotated y axis title; XTitleX and XTitleY the x axis title.
	YTitleX, YTitleY, XTitleX, XTitleY string
	// YTickX is where the y ticks' labels end; XTickY the x ticks' labels' baseline.
	YTickX, XTickY string
	Bars           []bar
	Legend         []legendItem
}

type box struct{ Left, Top, Right, Bottom string }

type tick struct{ Pos, Label string }

// bar is one cycle: its tooltip and its segments, bottom up.
type bar struct {
	Title string
	Segs  []seg
}

type seg struct{ X, Y, W, H, Class string }

type legendItem struct{ Class, Label string }

// The chart geometry (viewBox units).
const (
	chartW, chartH          = 720, 200
	plotLeft, plotRight     = 60.0, 708.0
	plotTop, plotBottom     = 12.0, 160.0
	xTitleY, yTitleX        = 194.0, 14.0
	minBarW, maxBarW        = 1.0, 14.0
	barWidthShareOfInterval = 0.75
	zeroHeight              = 1.0
	xTickEvery              = 3 * time.Hour
	// paletteSize is how many colours the failure classes get (CSS classes c0…c7).
	paletteSize = 8
)

const emptyChart = "No cycles in the last 24 hours."

func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// frame is a chart's axes for a window, a y range and the cycles' period (bar width).
type frame struct {
	since    time.Time
	interval time.Duration
	top      float64 // the y axis' maximum
}

func (fr frame) x(t time.Time) float64 {
	share := float64(t.Sub(fr.since)) / float64(Window)
	return plotLeft + min(max(share, 0), 1)*(plotRight-plotLeft)
}

func (fr frame) y(v float64) float64 {
	return plotBottom - v/fr.top*(plotBottom-plotTop)
}

// barBox is a bar's left edge and width at time t.
func (fr frame) barBox(t time.Time) (x, w float64) {
	w = (plotRight - plotLeft) * float64(fr.interval) / float64(Window) * barWidthShareOfInterval
	w = min(max(w, minBarW), maxBarW)
	x = min(max(fr.x(t)-w/2, plotLeft), plotRight-w)
	return x, w
}

// scale picks a round step and top for values up to maxV: at most about four steps of 1, 2 or 5
// times a power of ten (whole steps for counts).
func scale(maxV float64, whole bool) (step, top float64) {
	if maxV <= 0 {
		return 1, 1
	}
	raw := maxV / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	if whole && step < 1 {
		step = 1
	}
	return step, math.Ceil(maxV/step-1e-9) * step
}

func tickLabel(v, step float64) string {
	decimals := max(0, int(-math.Floor(math.Log10(step))))
	v = math.Round(v/step) * step
	if decimals == 0 {
		return num(int(v))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// newChart lays out the axes of a chart of the cycles whose values reach maxV.
func newChart(id, title, yLabel string, since time.Time, interval time.Duration, maxV float64, whole bool) (chart, frame) {
	step, top := scale(maxV, whole)
	fr := frame{since: since, interval: interval, top: top}
	c := chart{ID: id, Title: title, YLabel: yLabel, W: chartW, H: chartH,
		Plot:    box{Left: f(plotLeft), Top: f(plotTop), Right: f(plotRight), Bottom: f(plotBottom)},
		YTitleX: f(yTitleX), YTitleY: f((plotTop + plotBottom) / 2), XTitleX: f((plotLeft + plotRight) / 2), XTitleY: f(xTitleY),
		YTickX: f(plotLeft - 6), XTickY: f(plotBottom + 16)}
	for v := 0.0; v <= top+step/2; v += step {
		c.YTicks = append(c.YTicks, tick{Pos: f(fr.y(v)), Label: tickLabel(v, step)})
	}
	end := since.Add(Window)
	for t := since.Truncate(time.Hour); !t.After(end); t = t.Add(time.Hour) {
		if t.Before(since) || t.UTC().Hour()%int(xTickEvery.Hours()) != 0 {
			continue
		}
		c.XTicks = append(c.XTicks, tick{Pos: f(fr.x(t)), Label: clock(t)})
	}
	return c, fr
}

// column is one bar of one value.
func column(fr frame, t time.Time, v float64, tip string) bar {
	x, w := fr.barBox(t)
	b := bar{Title: tip}
	if v <= 0 {
		b.Segs = []seg{{X: f(x), Y: f(plotBottom - zeroHeight), W: f(w), H: f(zeroHeight), Class: "z"}}
		return b
	}
	y := fr.y(v)
	b.Segs = []seg{{X: f(x), Y: f(y), W: f(w), H: f(plotBottom - y), Class: "b"}}
	return b
}

// valueChart is a chart of one value per cycle; tip is each bar's tooltip.
func valueChart(id, title, yLabel string, since time.Time, interval time.Duration, cycles []Cycle, whole bool,
	value func(Cycle) float64, tip func(Cycle) string) chart {
	if len(cycles) == 0 {
		return chart{ID: id, Title: title, Empty: emptyChart}
	}
	maxV := 0.0
	for _, c := range cycles {
		maxV = max(maxV, value(c))
	}
	ch, fr := newChart(id, title, yLabel, since, interval, maxV, whole)
	for _, c := range cycles {
		ch.Bars = append(ch.Bars, column(fr, c.Started, value(c), clock(c.Started)+" UTC · "+tip(c)))
	}
	return ch
}

// failureChart stacks each cycle's failures by class, classes in the legend's order (most
// failures in the window first) and colours.
func failureChart(since time.Time, interval time.Duration, cycles []Cycle) chart {
	if len(cycles) == 0 {
		return chart{ID: "chart-failures", Title: "Failures by class per cycle", Empty: emptyChart}
	}
	totals := map[string]int{}
	maxV := 0
	for _, c := range cycles {
		sum := 0
		for k, v := range c.Failures {
			if v > 0 {
				totals[k] += v
				sum += v
			}
		}
		maxV = max(maxV, sum)
	}
	classes := byCount(totals)
	colour := map[string]string{}
	ch, fr := newChart("chart-failures", "Failures by class per cycle", "users failed", since, interval, float64(maxV), true)
	for i, c := range classes {
		colour[c.Class] = "c" + strconv.Itoa(i%paletteSize)
		ch.Legend = append(ch.Legend, legendItem{Class: colour[c.Class], Label: c.Class})
	}
	if len(classes) == 0 {
		ch.Note = "No failures in the last 24 hours."
	}
	for _, c := range cycles {
		tip := clock(c.Started) + " UTC · "
		parts := byCount(c.Failures)
		sum := 0
		for _, p := range parts {
			sum += p.N
		}
		if sum == 0 {
			ch.Bars = append(ch.Bars, column(fr, c.Started, 0, tip+"no failures"))
			continue
		}
		// Stack in the legend's order so a class keeps its place from bar to bar.
		sort.SliceStable(parts, func(i, j int) bool { return rank(classes, parts[i].Class) < rank(classes, parts[j].Class) })
		x, w := fr.barBox(c.Started)
		b := bar{Title: tip + plural(sum, "user") + " failed: " + failureText(c.Failures)}
		acc := 0
		for _, p := range parts {
			y0, y1 := fr.y(float64(acc)), fr.y(float64(acc+p.N))
			b.Segs = append(b.Segs, seg{X: f(x), Y: f(y1), W: f(w), H: f(y0 - y1), Class: colour[p.Class]})
			acc += p.N
		}
		ch.Bars = append(ch.Bars, b)
	}
	return ch
}

func rank(classes []classCount, class string) int {
	for i, c := range classes {
		if c.Class == class {
			return i
		}
	}
	return len(classes)
}

// charts are the page's four charts.
func charts(rep Report) []chart {
	since, interval := rep.Since, time.Duration(rep.IntervalS)*time.Second
	return []chart{
		valueChart("chart-changes", "Changes per cycle", "changes", since, interval, rep.Cycles, true,
			func(c Cycle) float64 { return float64(c.Changed) },
			func(c Cycle) string { return plural(c.Changed, "change") + " (" + plural(c.Users, "user") + ")" }),
		failureChart(since, interval, rep.Cycles),
		valueChart("chart-graph-calls", "Graph calls per cycle", "Graph calls", since, interval, rep.Cycles, true,
			func(c Cycle) float64 { return float64(c.GraphCalls) },
			func(c Cycle) string {
				return plural(c.GraphCalls, "Graph call") + " (" + num(c.Throttled) + " throttled, " + num(c.Retries) + " retried)"
			}),
		valueChart("chart-duration", "Cycle duration", "seconds", since, interval, rep.Cycles, false,
			func(c Cycle) float64 { return float64(c.DurationMs) / 1000 },
			func(c Cycle) string {
				if c.DurationMs <= 0 {
					return "no shard has finished"
				}
				return seconds(c.DurationMs)
			}),
	}
}
