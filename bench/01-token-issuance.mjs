#!/usr/bin/env node
// Item 1: $get-ws-binding-token requests per second over keep-alive connections, against the
// same httpd serving a static file of the same size (same run, measured in turns).
// Targets: >= 0.5 of the static rate and >= 5,000/s. Every token is real: a sample before and
// after the load verifies (signature, claims, grant row), and the grant rows grow by at least
// the number of answers wrk counted.
import assert from 'node:assert/strict';
import { backportBody, TOPIC } from '../tests/integration/lib/fhirsub.mjs';
import {
  assertRealToken,
  benchSettings,
  countRows,
  createSubscription,
  interleave,
  report,
  request,
  runBench,
  startBenchStack,
  wrk,
} from './lib/bench.mjs';

const RATIO_TARGET = 0.5;
const ABS_TARGET = 5000;

/** A file of exactly `bytes` bytes that looks like the JSON it stands in for. */
function staticBody(bytes) {
  const head = '{"resourceType":"Parameters","padding":"';
  const tail = '"}';
  return head + 'x'.repeat(Math.max(0, bytes - head.length - tail.length)) + tail;
}

await runBench(async () => {
  const { seconds, rounds } = benchSettings();
  const ctx = await startBenchStack();
  try {
    const sub = await createSubscription(ctx.fhirUrl, backportBody({ topic: TOPIC.patientChange, filters: [], heartbeat: null, maxCount: null }));
    const tokenUrl = `${ctx.fhirUrl}/Subscription/$get-ws-binding-token?id=${sub.id}`;
    const sample = await request(tokenUrl);
    await assertRealToken(ctx, sample, [sub.id]);
    const file = staticBody(sample.bytes);
    ctx.writeStatic('token-size.json', file);
    const staticUrl = ctx.staticUrl('token-size.json');
    const check = await request(staticUrl);
    assert.equal(check.status, 200, check.text);
    assert.equal(check.bytes, sample.bytes, 'static file as large as a token answer');

    const grantsBefore = await countRows(ctx, 'fhirsub_grant');
    const results = await interleave({ static: () => wrk(staticUrl), token: () => wrk(tokenUrl) }, { rounds });
    const grantsAfter = await countRows(ctx, 'fhirsub_grant');
    const answered = results.token.runs.reduce((n, r) => n + r.requests, 0);
    assert.ok(grantsAfter - grantsBefore >= answered, `${answered} tokens answered, ${grantsAfter - grantsBefore} grant rows written`);
    await assertRealToken(ctx, await request(tokenUrl), [sub.id]);

    const token = results.token.rps;
    const ratio = token / results.static.rps;
    report({
      item: '1',
      name: `token issuance ($get-ws-binding-token, anonymous, keep-alive, ${sample.bytes} B answers)`,
      value: token,
      unit: 'req/s',
      baseline: { name: `static file of ${sample.bytes} B, same httpd`, value: results.static.rps },
      targets: [
        { text: `ratio >= ${RATIO_TARGET}`, met: ratio >= RATIO_TARGET },
        { text: `>= ${ABS_TARGET} req/s`, met: token >= ABS_TARGET },
      ],
      commands: [results.token.runs[0].command.replace(tokenUrl, 'TOKEN_URL'), results.static.runs[0].command.replace(staticUrl, 'STATIC_URL')],
      note: `median of ${rounds} turn(s) of ${seconds} s each; p99 token ${results.token.runs.at(-1).p99Ms} ms, static ${results.static.runs.at(-1).p99Ms} ms; ${answered} tokens verified by grant rows`,
    });
  } finally {
    await ctx.stop();
  }
});
