// The job page's charts: the reward / accuracy curve per episode (live) and the Pareto front
// of accuracy against the budget's cost, estimated by the search and measured on a worker.
import { h } from 'preact';
import { useMemo } from 'preact/hooks';
import htm from 'htm';
import { Chart } from '../chart.js';

const html = htm.bind(h);

// points: [{n, episode, reward, accuracy, cost_ratio}] in the order the search ran them.
export function CurveChart({ points, budget }) {
  const option = useMemo(() => {
    let best = -Infinity;
    const bestSoFar = points.map((p) => [p.n, (best = Math.max(best, p.reward))]);
    return {
      tooltip: { trigger: 'axis' },
      legend: { top: 0 },
      grid: { left: 50, right: 60, top: 36, bottom: 40 },
      xAxis: { type: 'value', name: 'episode', nameLocation: 'middle', nameGap: 26, minInterval: 1 },
      yAxis: [
        { type: 'value', name: 'reward / accuracy', scale: true },
        { type: 'value', name: `${budget ? budget.kind : 'cost'} ratio`, min: 0, max: 1, splitLine: { show: false },
          nameTextStyle: { align: 'right' } },
      ],
      series: [
        { name: 'reward', type: 'line', showSymbol: points.length < 80, data: points.map((p) => [p.n, p.reward]) },
        { name: 'accuracy', type: 'line', showSymbol: false, lineStyle: { type: 'dashed' },
          data: points.map((p) => [p.n, p.accuracy]) },
        { name: 'best reward', type: 'line', step: 'end', showSymbol: false, data: bestSoFar },
        { name: 'cost ratio', type: 'scatter', yAxisIndex: 1, symbolSize: 4, data: points.map((p) => [p.n, p.cost_ratio]),
          markLine: budget && budget.ratio ? { symbol: 'none', label: { position: 'insideStartTop', formatter: `budget ${budget.ratio}x` },
            data: [{ yAxis: budget.ratio }] } : undefined },
      ],
    };
  }, [points, budget]);
  return html`<${Chart} option=${option} points=${points.length} testid="curve" name="curve" />`;
}

// report: the job's report.json (episodes, pareto, verification, budget).
export function ParetoChart({ report }) {
  const episodes = report.episodes || [];
  const front = new Set(report.pareto || []);
  // Measured latency ratios share the x axis only with a latency budget's estimates.
  const latency = report.budget && report.budget.kind === 'latency';
  const measured = latency ? (report.verification || []).filter((v) => v.measured_us > 0 && v.dense_measured_us > 0) : [];
  const option = {
    tooltip: { trigger: 'item', formatter: (p) => p.data.label || '' },
    legend: { top: 0 },
    grid: { left: 50, right: 30, top: 36, bottom: 46 },
    xAxis: { type: 'value', name: `${report.budget ? report.budget.kind : 'cost'} ratio of the dense model`,
      nameLocation: 'middle', nameGap: 28, min: 0,
      max: (extent) => Number((Math.max(extent.max, report.budget ? report.budget.ratio : 0) * 1.1).toFixed(2)) },
    yAxis: { type: 'value', name: 'accuracy', scale: true },
    series: [
      { name: 'episodes (search estimate)', type: 'scatter', symbolSize: 5,
        data: episodes.map((e, i) => ({ value: [e.cost_ratio, e.accuracy], label: `episode ${e.episode}`, i }))
          .filter((d) => !front.has(d.i)) },
      { name: 'Pareto front', type: 'line', symbolSize: 8,
        data: episodes.map((e, i) => ({ value: [e.cost_ratio, e.accuracy], label: `episode ${e.episode} (front)`, i }))
          .filter((d) => front.has(d.i)).sort((a, b) => a.value[0] - b.value[0]),
        markLine: report.budget ? { symbol: 'none', label: { formatter: `budget ${report.budget.ratio}x` },
          data: [{ xAxis: report.budget.ratio }] } : undefined },
      latency && { name: 'measured latency ratio', type: 'scatter', symbol: 'diamond', symbolSize: 10,
        data: measured.map((v) => ({ value: [v.measured_us / v.dense_measured_us, v.accuracy],
          label: `policy #${v.rank + 1} run ${v.run + 1}: measured ${(v.measured_us / v.dense_measured_us).toFixed(2)}x of dense` })) },
    ].filter(Boolean),
  };
  return html`<${Chart} option=${option} points=${episodes.length} testid="pareto" name="pareto" />`;
}
