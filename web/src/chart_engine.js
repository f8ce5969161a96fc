// Apache ECharts with only the parts the dashboard's charts use. Loaded on demand by
// chart.js (`import()`), so the build makes it a file of its own (build.mjs): pages without
// charts never fetch it.
import * as echarts from 'echarts/core';
import { LineChart, ScatterChart } from 'echarts/charts';
import {
  DataZoomComponent, GridComponent, LegendComponent, MarkLineComponent, TitleComponent, TooltipComponent,
} from 'echarts/components';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([LineChart, ScatterChart, GridComponent, TooltipComponent, LegendComponent, MarkLineComponent,
  DataZoomComponent, TitleComponent, CanvasRenderer]);

export { echarts };
