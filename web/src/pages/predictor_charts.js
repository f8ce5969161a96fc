// The Predictors page's charts of one device class, from its evaluation's `points` (at most
// 2,000 kernel measurements, held-out ones first): the XGBoost predictor's prediction of each
// held-out kernel against its measurement (log-log, y = x and ±10%), and every kernel's
// latency against its FLOPs (MobileOne's point: FLOPs do not predict latency). Colours by
// kernel kind, the same in both.
import { h } from 'preact';
import { useMemo } from 'preact/hooks';
import htm from 'htm';
import { Chart } from '../chart.js';

const html = htm.bind(h);

const KIND_COLORS = { conv2d: '#2463c7', depthwise: '#d9822b', linear: '#2f9e6e' };
const OTHER_COLOR = '#8e6bbf';
const LINE_COLOR = '#7a8594';
const kindsOf = (points) => [...new Set(points.map((p) => p.kind))].sort();
const colorOf = (kind) => KIND_COLORS[kind] || OTHER_COLOR;
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toPrecision(3));

// Held-out points the evaluation's XGBoost model predicted (predicted_us 0: no prediction).
export const heldOutPoints = (points) => points.filter((p) => p.held_out && p.predicted_us > 0 && p.measured_us > 0);
export const flopsPoints = (points) => points.filter((p) => p.flops > 0 && p.measured_us > 0);

function logAxis(name, extra = {}) {
  return { type: 'log', name, nameLocation: 'middle', nameGap: 30, ...extra };
}

// One scatter series per kernel kind; `value` maps a point to [x, y].
function kindSeries(points, value, label) {
  return kindsOf(points).map((kind) => ({
    name: kind, type: 'scatter', symbolSize: 6, itemStyle: { color: colorOf(kind), opacity: 0.75 },
    data: points.filter((p) => p.kind === kind).map((p) => ({ value: value(p), label: label(p) })),
  }));
}

function PredictedVsMeasured({ points }) {
  const option = useMemo(() => {
    const values = points.flatMap((p) => [p.measured_us, p.predicted_us]);
    const lo = 10 ** Math.floor(Math.log10(Math.min(...values))), hi = 10 ** Math.ceil(Math.log10(Math.max(...values)));
    const line = (name, k, type) => ({ name, type: 'line', showSymbol: false, silent: true,
      itemStyle: { color: LINE_COLOR }, lineStyle: { type, width: 1, color: LINE_COLOR },
      data: [[lo, lo * k], [hi, hi * k]] });
    return {
      tooltip: { trigger: 'item', formatter: (p) => (p.data && p.data.label) || '' },
      legend: { top: 0 },
      grid: { left: 60, right: 30, top: 36, bottom: 46 },
      xAxis: logAxis('measured latency (µs)', { min: lo, max: hi, axisLabel: { formatter: fmt } }),
      yAxis: logAxis('predicted latency (µs)', { min: lo, max: hi, nameGap: 44, axisLabel: { formatter: fmt } }),
      series: [
        ...kindSeries(points, (p) => [p.measured_us, p.predicted_us], (p) =>
          `${p.kind}: measured ${fmt(p.measured_us)} µs, predicted ${fmt(p.predicted_us)} µs ` +
          `(${(100 * (p.predicted_us / p.measured_us - 1)).toFixed(1)}%)`),
        line('y = x', 1, 'solid'), line('±10%', 1.1, 'dashed'), line('±10%', 0.9, 'dashed'),
      ],
    };
  }, [points]);
  return html`<${Chart} option=${option} points=${points.length} testid="predicted-vs-measured"
    name="predicted-vs-measured" />`;
}

function LatencyVsFlops({ points }) {
  const option = useMemo(() => ({
    tooltip: { trigger: 'item', formatter: (p) => (p.data && p.data.label) || '' },
    legend: { top: 0 },
    grid: { left: 60, right: 30, top: 36, bottom: 46 },
    xAxis: logAxis('FLOPs as run (non-zero)', { axisLabel: { formatter: (x) => x.toExponential(0) } }),
    yAxis: logAxis('measured latency (µs)', { nameGap: 44, axisLabel: { formatter: fmt } }),
    series: kindSeries(points, (p) => [p.flops, p.measured_us], (p) =>
      `${p.kind}${p.held_out ? ' (held out)' : ''}: ${p.flops.toExponential(2)} FLOPs, ${fmt(p.measured_us)} µs`),
  }), [points]);
  return html`<${Chart} option=${option} points=${points.length} testid="latency-vs-flops" name="latency-vs-flops" />`;
}

// evaluation: the API's PredictorEvaluation of `deviceClass`, or { error } when it was
// refused (shown by the page); null while loading.
export function PredictorCharts({ evaluation, deviceClass }) {
  if (!evaluation) return null;
  const all = evaluation.points || [];
  if (evaluation.error || all.length === 0) {
    return html`<p class="muted" data-testid="predictor-charts-none">No charts: ${evaluation.error
      ? `no evaluation of ${deviceClass} (see above).` : `no kernel measurements of ${deviceClass} yet.`}</p>`;
  }
  const heldOut = heldOutPoints(all), byFlops = flopsPoints(all);
  const total = (evaluation.train_kernels || 0) + (evaluation.heldout_kernels || 0);
  const sampled = total > all.length ? ` (of ${total} measured, evenly sampled)` : '';
  return html`<h2>Predicted vs measured <span class="muted" data-testid="predicted-count">${heldOut.length} held-out kernels</span></h2>
    ${heldOut.length > 0 ? html`<${PredictedVsMeasured} points=${heldOut} />`
      : html`<p class="muted" data-testid="predicted-none">No held-out kernel was predicted.</p>`}
    <h2>Latency vs FLOPs <span class="muted" data-testid="flops-count">${byFlops.length} kernels${sampled}</span></h2>
    <${LatencyVsFlops} points=${byFlops} />`;
}
