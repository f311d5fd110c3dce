// Every log line carries a number used nowhere else, in the range of its layer: core FS0nnnn,
// module FS1nnnn (FHIRSUB_LOGNO), notifier FS2nnnn, admin tool FS3nnnn (docs/INTERNALS.md).
// Reads the C sources of the checkout; needs no build.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './lib/fhirsub.mjs';

const LAYERS = { 'src/core': '0', mod_fhirsub: '1', notifier: '2', admin: '3' };
// httpd's, the notifier's and the core's logging calls
const LOG_CALL = /\b(ap_log_(?:r|c|p)?error|nt_log|fs_log_perror)\s*\(/g;
const NUMBER = /FHIRSUB_LOGNO\((\d+)\)|"FS(\d{5}):/g;

function sources() {
  return Object.keys(LAYERS).flatMap((dir) =>
    fs
      .readdirSync(path.join(REPO_ROOT, dir))
      .filter((f) => /\.[ch]$/.test(f))
      .map((f) => ({ file: `${dir}/${f}`, layer: LAYERS[dir] })),
  );
}

/** C text without comments; string literals kept (they hold the numbers). */
function stripComments(text) {
  return text.replace(/"(?:\\.|[^"\\])*"|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m) => (m.startsWith('"') ? m : m.replace(/[^\n]/g, ' ')));
}

/** The argument text of the call whose "(" is at open: up to the matching ")". */
function callArgs(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return text.slice(open + 1, i);
  }
  throw new Error('unbalanced call');
}

function lineOf(text, index) {
  return text.slice(0, index).split('\n').length;
}

test('every log call carries a number, unique across the code base, in its layer\'s range', () => {
  const seen = new Map(); // number -> "file:line"
  const problems = [];
  let calls = 0;
  for (const { file, layer } of sources()) {
    const text = stripComments(fs.readFileSync(path.join(REPO_ROOT, file), 'utf8'));
    for (const m of text.matchAll(NUMBER)) {
      const number = m[1] ?? m[2];
      const where = `${file}:${lineOf(text, m.index)}`;
      if (!/^\d{5}$/.test(number)) problems.push(`${where}: ${number} is not five digits`);
      else if (number[0] !== layer) problems.push(`${where}: FS${number} is outside FS${layer}nnnn`);
      if (seen.has(number)) problems.push(`${where}: FS${number} also at ${seen.get(number)}`);
      else seen.set(number, where);
    }
    for (const m of text.matchAll(LOG_CALL)) {
      const lineStart = text.lastIndexOf('\n', m.index) + 1;
      const before = text.slice(lineStart, m.index);
      if (/#\s*define|\b(void|int|static)\b/.test(before)) continue; // a definition, not a call
      const args = callArgs(text, m.index + m[0].length - 1);
      // the module's sink forwards core lines (which carry their own number) as "%s"
      if (/,\s*"%s"\s*,\s*buf\s*$/.test(args)) continue;
      calls++;
      if (!/FHIRSUB_LOGNO\(\d+\)|"FS\d{5}: /.test(args)) {
        problems.push(`${file}:${lineOf(text, m.index)}: ${m[1]}(...) without a log number`);
      }
    }
  }
  assert.ok(calls > 50, `found only ${calls} log calls: is the scan still right?`);
  assert.ok(seen.size >= calls, `${seen.size} numbers for ${calls} calls`);
  assert.deepEqual(problems, []);
});
