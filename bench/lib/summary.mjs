// bench/run's closing table: one line per figure recorded by report() (bench.mjs) in the
// results file given as the argument, and one per bench that failed.
import fs from 'node:fs';

const file = process.argv[2];
const records = fs
  .readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line));

function fmt(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2);
}

const rows = records.map((r) => {
  if (r.failed) return [r.db, r.item, 'FAILED (see its output above)', '', '', '', ''];
  const verdict = r.met === null ? 'info' : r.met ? 'MET' : 'MISSED';
  // a miss names the targets it missed; a pass names them all
  const targets = r.targets.filter((t) => r.met || !t.met).map((t) => t.text).join(', ');
  return [r.db, r.item, r.name, `${fmt(r.value)} ${r.unit}`, r.baseline ? `${fmt(r.baseline.value)}` : '-', r.ratio === null ? '-' : r.ratio.toFixed(3), `${verdict}${targets ? ` (${targets})` : ''}`];
});
const header = ['db', 'item', 'figure', 'value', 'baseline', 'ratio', 'target'];
const widths = header.map((h, i) => Math.min(i === 2 ? 70 : 40, Math.max(h.length, ...rows.map((r) => String(r[i]).length))));
const line = (cells) => cells.map((c, i) => String(c).slice(0, widths[i]).padEnd(widths[i])).join('  ').trimEnd();
console.log('\n==> summary (each figure against its baseline from the same run)');
console.log(line(header));
for (const r of rows) console.log(line(r));
