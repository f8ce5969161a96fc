// An Apache ECharts chart (only the parts used are bundled) that follows its `option` and
// the dark mode, with a PNG export. `points` is written to data-points for tests and
// screen readers: how many data points the chart shows.
import { h } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import htm from 'htm';
import * as echarts from 'echarts/core';
import { LineChart, ScatterChart } from 'echarts/charts';
import {
  DataZoomComponent, GridComponent, LegendComponent, MarkLineComponent, TitleComponent, TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, ScatterChart, GridComponent, TooltipComponent, LegendComponent, MarkLineComponent,
  DataZoomComponent, TitleComponent, CanvasRenderer]);
const html = htm.bind(h);

export function isDark() {
  return document.documentElement.classList.contains('dark');
}

export function Chart({ option, testid, points = 0, name = 'chart', height = 320 }) {
  const box = useRef(null);
  const chart = useRef(null);
  const dark = isDark();
  useEffect(() => {
    chart.current = echarts.init(box.current, dark ? 'dark' : null, { renderer: 'canvas' });
    const resize = new ResizeObserver(() => chart.current && chart.current.resize());
    resize.observe(box.current);
    return () => {
      resize.disconnect();
      chart.current.dispose();
      chart.current = null;
    };
  }, [dark]);
  useEffect(() => {
    if (chart.current) chart.current.setOption({ backgroundColor: 'transparent', animation: false, ...option }, true);
  }, [option, dark]);
  const savePng = () => {
    const url = chart.current.getDataURL({ type: 'png', pixelRatio: 2, backgroundColor: dark ? '#111' : '#fff' });
    const a = document.createElement('a');
    a.href = url;
    a.download = `${name}.png`;
    a.click();
  };
  return html`<div class="chart" data-testid=${testid} data-points=${points}>
    <button class="small chart-png" onClick=${savePng} title="the chart as PNG">PNG</button>
    <div ref=${box} style=${`height:${height}px`}></div>
  </div>`;
}
