import { formatCell, formatRatio } from './format';
import { type PartReport, type Role, type Table, bestPeer, chartColumns, comparedRows, ratioToBestPeer } from './model';

/**
 * Horizontal bar charts as plain SVG, written by hand (no browser, no library): one bar per library, its value at
 * the bar's end, Warren in orange. The background is painted white so the chart reads the same in GitHub's light
 * and dark themes.
 */

const WIDTH = 520;
const PAD = 16;
const ROW_HEIGHT = 40;
const BAR_HEIGHT = 16;
const FONT = 'font-family="-apple-system, BlinkMacSystemFont, Segoe UI, Helvetica, Arial, sans-serif"';
/** Rough advance of one character in the fonts above (12 px, and 14 px bold titles): room for labels, and wrapping. */
const CHAR_PX = 7;
const TITLE_CHAR_PX = 8.6;
const LINE_CHARS = Math.floor((WIDTH - 2 * PAD) / CHAR_PX);

const COLOURS: Record<Role | 'bestPeer', string> = {
  warren: '#d9480f',
  reference: '#f4a77c',
  bestPeer: '#495057',
  peer: '#adb5bd',
};

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** Splits `text` into lines of at most `max` characters, at spaces where it can. */
export function wrap(text: string, max: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > max) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x}" y="${y}"${attrs ? ` ${attrs}` : ''}>${escapeXml(content)}</text>`;
}

/** The chart of column `index` of `table`: a standalone SVG document. */
export function chartSvg(report: PartReport, table: Table, index: number): string {
  const { workload, metric } = table.columns[index];
  const best = bestPeer(table, index);
  const body: string[] = [];
  let y = PAD;

  const titleLines = wrap(`${report.title}: ${workload.title}`, Math.floor((WIDTH - 2 * PAD) / TITLE_CHAR_PX));
  for (const line of titleLines) {
    y += 18;
    body.push(text(PAD, y, line, 'font-size="14" font-weight="bold" fill="#212529"'));
  }
  y += 18;
  body.push(
    text(PAD, y, `${metric.label}, ${metric.unit} (${metric.better} is better)`, 'font-size="12" fill="#495057"'),
  );
  y += 8;

  const values = table.rows.map((r) => r.cells[index]);
  const labels = values.map((c) => (c === undefined ? 'no result' : formatCell(c, metric)));
  const barSpace = WIDTH - 2 * PAD - Math.max(...labels.map((l) => l.length)) * CHAR_PX - 8;
  const max = Math.max(0, ...values.map((c) => c?.value ?? 0));
  table.rows.forEach((row, i) => {
    const c = values[i];
    const isBest = row.role === 'peer' && best?.library === row.library && c !== undefined;
    const colour = isBest ? COLOURS.bestPeer : COLOURS[row.role];
    const name = `${row.library}${isBest ? ' (best peer)' : row.role === 'reference' ? ' (reference)' : ''}`;
    const weight = row.role === 'warren' ? ' font-weight="bold"' : '';
    body.push(text(PAD, y + 13, name, `font-size="12" fill="#212529"${weight}`));
    const width = c === undefined || max === 0 ? 0 : c.value === 0 ? 0 : Math.max(2, (c.value / max) * barSpace);
    const barY = y + 18;
    if (width > 0)
      body.push(
        `<rect class="bar" x="${PAD}" y="${barY}" width="${width.toFixed(1)}" height="${BAR_HEIGHT}" rx="2" fill="${colour}"><title>${escapeXml(`${row.library}: ${labels[i]} ${metric.unit}`)}</title></rect>`,
      );
    else body.push(`<rect class="bar" x="${PAD}" y="${barY}" width="0" height="${BAR_HEIGHT}" fill="${colour}"/>`);
    const labelAttrs = `font-size="12" fill="${c === undefined ? '#868e96' : '#212529'}"${weight}`;
    body.push(text(PAD + width + 6, barY + 12, labels[i], labelAttrs));
    y += ROW_HEIGHT;
  });

  y += 6;
  for (const row of comparedRows(table)) {
    const ratio = ratioToBestPeer(table, row, index);
    if (ratio === undefined) continue;
    const line = `${row.library} / best peer${best ? ` (${best.library})` : ''}: ${formatRatio(ratio)}`;
    for (const part of wrap(line, LINE_CHARS)) {
      y += 16;
      body.push(
        text(PAD, y, part, `font-size="12" fill="#212529"${row.role === 'warren' ? ' font-weight="bold"' : ''}`),
      );
    }
  }
  const height = Math.ceil(y + PAD);
  const title = `${report.title}: ${workload.title}: ${metric.label}, ${metric.unit}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" ${FONT}>`,
    `<title>${escapeXml(title)}</title>`,
    `<rect x="0.5" y="0.5" width="${WIDTH - 1}" height="${height - 1}" rx="6" fill="#ffffff" stroke="#d0d7de"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Every chart of a part: bench/results/<part>-<workload>.svg → SVG text. */
export function partCharts(report: PartReport): Array<{ file: string; svg: string }> {
  return chartColumns(report).map(({ table, index, file }) => ({ file, svg: chartSvg(report, table, index) }));
}
