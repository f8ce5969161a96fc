// A table of rows: sortable columns (the sort kept by the caller, e.g. in the URL), only the
// rows in view rendered (fixed row height), and a CSV export of every row.
// A column: {key, label, value(row) (sorting and CSV), cell(row) (what shows; value's text
// by default), num (right-aligned)}.
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { saveBlob } from './api.js';

const html = htm.bind(h);
const ROW_HEIGHT = 30;
const VIEW_ROWS = 40;  // rows rendered beyond those in view

const valueOf = (column, row) => (column.value ? column.value(row) : row[column.key]);

export function sortRows(rows, columns, sort, desc) {
  const column = columns.find((c) => c.key === sort);
  if (!column) return rows;
  const sign = desc ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = valueOf(column, a), y = valueOf(column, b);
    if (typeof x === 'number' && typeof y === 'number') return sign * (x - y);
    return sign * String(x ?? '').localeCompare(String(y ?? ''));
  });
}

export function csvOf(columns, rows) {
  const quote = (v) => {
    const s = v === undefined || v === null ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [columns.map((c) => quote(c.label)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => quote(valueOf(c, row))).join(','));
  return `${lines.join('\n')}\n`;
}

export function CsvButton({ columns, rows, name }) {
  const exportable = columns.filter((c) => !c.noCsv);
  const save = () => saveBlob(new Blob([csvOf(exportable, rows)], { type: 'text/csv' }), `${name}.csv`);
  return html`<button class="small" onClick=${save} title="every row as CSV">CSV</button>`;
}

// props: columns, rows, rowKey(row), sort, desc, onSort(key, desc) (no sorting without it),
// testid, empty (text when there are no rows), maxHeight (px, default 600).
export function DataTable({ columns, rows, rowKey, sort, desc, onSort, testid, empty = 'nothing yet', maxHeight = 600 }) {
  const [scrollTop, setScrollTop] = useState(0);
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - VIEW_ROWS / 2);
  const last = Math.min(rows.length, first + Math.ceil(maxHeight / ROW_HEIGHT) + VIEW_ROWS);
  const header = (c) => {
    const active = sort === c.key;
    const click = onSort && (() => onSort(c.key, active ? !desc : c.num || c.key === 'created'));
    return html`<th class=${c.num ? 'num' : ''} onClick=${click} aria-sort=${active ? (desc ? 'descending' : 'ascending') : 'none'}>
      ${c.label}${active ? (desc ? ' ▾' : ' ▴') : ''}</th>`;
  };
  return html`<div class="table-wrap" style=${`max-height:${maxHeight}px`} data-testid=${testid} data-rows=${rows.length}
      onScroll=${(e) => setScrollTop(e.currentTarget.scrollTop)}>
    <table>
      <thead><tr>${columns.map(header)}</tr></thead>
      <tbody>
        ${first > 0 && html`<tr class="spacer" style=${`height:${first * ROW_HEIGHT}px`}></tr>`}
        ${rows.slice(first, last).map((row) => html`<tr key=${rowKey(row)} data-key=${rowKey(row)}>
          ${columns.map((c) => html`<td class=${c.num ? 'num' : ''}>${c.cell ? c.cell(row) : String(valueOf(c, row) ?? '')}</td>`)}
        </tr>`)}
        ${last < rows.length && html`<tr class="spacer" style=${`height:${(rows.length - last) * ROW_HEIGHT}px`}></tr>`}
        ${rows.length === 0 && html`<tr><td class="empty" colspan=${columns.length}>${empty}</td></tr>`}
      </tbody>
    </table>
  </div>`;
}
