// An Apache ECharts chart that follows its `option` and the dark mode, with a PNG export.
// ECharts (chart_engine.js) is fetched with the first chart shown, not with the app; until
// it is in, the chart's box is empty. `points` is written to data-points for tests and
// screen readers: how many data points the chart shows (at once, before the drawing).
import { h } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import htm from 'htm';

const html = htm.bind(h);

let engine = null;  // the promise of ECharts, once a chart asked for it

// Resolves with ECharts, fetched once; a failed fetch is tried again by the next chart.
export function loadEcharts() {
  if (!engine) {
    engine = import('./chart_engine.js').then((m) => m.echarts, (e) => {
      engine = null;
      throw e;
    });
  }
  return engine;
}

export function isDark() {
  return document.documentElement.classList.contains('dark');
}

export function Chart({ option, testid, points = 0, name = 'chart', height = 320 }) {
  const box = useRef(null);
  const chart = useRef(null);
  const latest = useRef(option);  // drawn when ECharts comes in, if it comes after the option
  const [failed, setFailed] = useState('');
  const dark = isDark();
  latest.current = option;
  const draw = () => {
    if (!chart.current) return;
    chart.current.setOption({ backgroundColor: 'transparent', animation: false, ...latest.current }, true);
  };
  useEffect(() => {
    let live = true;
    let resize = null;
    loadEcharts().then((echarts) => {
      if (!live) return;
      chart.current = echarts.init(box.current, dark ? 'dark' : null, { renderer: 'canvas' });
      resize = new ResizeObserver(() => chart.current && chart.current.resize());
      resize.observe(box.current);
      draw();
    }, (e) => live && setFailed(`The charts' code did not load: ${e.message}`));
    return () => {
      live = false;
      if (resize) resize.disconnect();
      if (chart.current) chart.current.dispose();
      chart.current = null;
    };
  }, [dark]);
  useEffect(draw, [option, dark]);
  const savePng = () => {
    if (!chart.current) return;
    const url = chart.current.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: dark ? '#111' : '#fff' });
    const a = document.createElement('a');
    a.href = url;
    a.download = `${name}.png`;
    a.click();
  };
  return html`<div class="chart" data-testid=${testid} data-points=${points}>
    <button class="small chart-png" onClick=${savePng} title="the chart as PNG">PNG</button>
    ${failed && html`<p class="error" role="alert">${failed}</p>`}
    <div ref=${box} style=${`height:${height}px`}></div>
  </div>`;
}
