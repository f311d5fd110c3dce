#!/usr/bin/env node
// Item 5, HTTP side: how token issuance (item 1) and captured write throughput (item 4) change
// as the database grows. Each point is one wrk turn; its baseline is the series' first point,
// measured in the same run and on the same stack. Series:
//   A. non-matching subscriptions of other resource types: 10 -> 10,000 (token and writes)
//   B. non-matching subscriptions of the written type (other filter values): 10 -> 10,000
//   C. matching subscriptions: 1 -> 100 (1,000 in a full run); every write makes one event
//      per matching subscription, so writes/s falls as 1/m by design: the figure that must
//      stay flat is events recorded per second
//   D. stored events: 10^3 -> 10^6 (10^5 with --quick) (token and writes)
// Target for A, B, D ("flat or logarithmic"): the largest point keeps >= 0.7 of the first
// point's rate. C is reported against the same rule applied to events/s.
// Rows are seeded with bulk SQL (bench.mjs): copies of real subscriptions made through the API.
import assert from 'node:assert/strict';
import { backportBody, TOPIC } from '../tests/integration/lib/fhirsub.mjs';
import {
  assertRealToken,
  benchSettings,
  cloneSubscriptions,
  createSubscription,
  deleteSubscriptions,
  IDENT,
  patient,
  report,
  request,
  runBench,
  seedEvents,
  settleDatabase,
  settledCount,
  startBenchStack,
  wrk,
} from './lib/bench.mjs';

const FLAT_TARGET = 0.7;
const WRITER = 'bench-scaling-writer';
const HEADERS = { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' };

const { quick } = benchSettings();
const POINT_SECONDS = quick ? 1 : 2;
const SUB_POINTS = quick ? [10, 10_000] : [10, 1000, 10_000];
const MATCH_POINTS = quick ? [1, 100] : [1, 100, 1000];
const EVENT_POINTS = quick ? [1000, 100_000] : [1000, 10_000, 100_000, 1_000_000];

function sub(ctx, topic, filters) {
  return createSubscription(ctx.fhirUrl, backportBody({ topic, filters, heartbeat: null, maxCount: null }));
}

async function liveSubs(ctx) {
  return Number((await ctx.query("SELECT COUNT(*) FROM fhirsub_subscription WHERE status IN ('active', 'error')"))[0][0]);
}

function eventTotal(ctx) {
  return settledCount(ctx, 'fhirsub_event');
}

/** One measured point: token rps (optional) and captured write rps, with their checks. */
async function measure(ctx, { tokenUrl, tokenSub, writeUrl, body, token = true }) {
  const point = {};
  if (token) {
    const t = await wrk(tokenUrl, { seconds: POINT_SECONDS });
    await assertRealToken(ctx, await request(tokenUrl), [tokenSub]);
    point.token = t.rps;
    point.tokenCommand = t.command;
  }
  const before = await eventTotal(ctx);
  const w = await wrk(writeUrl, { method: 'POST', body, headers: HEADERS, seconds: POINT_SECONDS });
  point.write = w.rps;
  point.writes = w.requests;
  point.events = (await eventTotal(ctx)) - before;
  point.eventRate = point.events / POINT_SECONDS;
  point.writeCommand = w.command;
  return point;
}

/**
 * Reports the last point against the first. `again`: the first point measured once more
 * after the last (the series shrunk back): the baseline is then the mean of both, so a
 * drift of the machine's load during the series does not pass for a trend.
 */
function reportSeries({ series, metric, unit, label, points, again, pick, what, target = true, command = 'writeCommand' }) {
  const first = points[0];
  const last = points.at(-1);
  const value = pick(last.m);
  const base = again ? (pick(first.m) + pick(again)) / 2 : pick(first.m);
  const curve = [...points.map((p) => `${label(p.n)}: ${Math.round(pick(p.m))}`), ...(again ? [`${label(first.n)} again: ${Math.round(pick(again))}`] : [])].join(', ');
  report({
    item: '5-http',
    name: `${series}: ${metric} at ${label(last.n)}`,
    value,
    unit,
    baseline: { name: `${metric} at ${label(first.n)} (same run${again ? ', before and after' : ''})`, value: base },
    targets: target ? [{ text: `>= ${FLAT_TARGET} of the first point (${what})`, met: value >= FLAT_TARGET * base }] : [],
    commands: [last.m[command]],
    note: `curve ${curve}`,
  });
}

await runBench(async () => {
  const ctx = await startBenchStack();
  try {
    const tokenSub = await sub(ctx, TOPIC.encounterStart, ['Encounter?patient=Patient/bench-token']);
    const tokenUrl = `${ctx.fhirUrl}/Subscription/$get-ws-binding-token?id=${tokenSub.id}`;
    await assertRealToken(ctx, await request(tokenUrl), [tokenSub.id]);
    const matching = await sub(ctx, TOPIC.patientChange, [`Patient?identifier=${IDENT}|${WRITER}`]);
    const otherType = await sub(ctx, TOPIC.encounterComplete, ['Encounter?patient=Patient/bench-other']);
    const sameType = await sub(ctx, TOPIC.patientChange, [`Patient?identifier=${IDENT}|bench-other-value`]);
    const writeUrl = `${ctx.fhirUrl}/Patient`;
    const body = patient(WRITER);
    const base = await liveSubs(ctx); // the four above
    const opts = { tokenUrl, tokenSub: tokenSub.id, writeUrl, body };

    const started = Date.now();
    const elapsed = (what) => console.log(`    (${what}: ${Math.round((Date.now() - started) / 1000)} s into the bench)`);
    // A and B: non-matching subscriptions
    // each copy with its own filter value, as one subscription per patient would have
    for (const [series, template, token, distinct] of [
      ['A non-matching subscriptions, other resource types', otherType.id, true, 'bench-other'],
      ['B non-matching subscriptions, same resource type', sameType.id, false, 'bench-other-value'],
    ]) {
      const points = [];
      for (const n of SUB_POINTS) {
        await deleteSubscriptions(ctx, 'bench-nm-');
        await cloneSubscriptions(ctx, template, n - 1, 'bench-nm-', { distinct });
        await settleDatabase(ctx);
        assert.equal(await liveSubs(ctx), base + n - 1);
        const m = await measure(ctx, { ...opts, token });
        assert.ok(m.events >= m.writes, `${m.writes} writes, ${m.events} events`);
        points.push({ n, m });
      }
      await deleteSubscriptions(ctx, 'bench-nm-');
      await cloneSubscriptions(ctx, template, SUB_POINTS[0] - 1, 'bench-nm-', { distinct });
      await settleDatabase(ctx);
      const again = await measure(ctx, { ...opts, token });
      await deleteSubscriptions(ctx, 'bench-nm-');
      const label = (n) => `${n.toLocaleString('en-US')} subscriptions`;
      if (token) reportSeries({ series, metric: 'token issuance', unit: 'req/s', label, points, again, pick: (m) => m.token, what: 'flat', command: 'tokenCommand' });
      reportSeries({ series, metric: 'captured writes', unit: 'req/s', label, points, again, pick: (m) => m.write, what: 'flat' });
    }

    elapsed('series A and B done');
    // C: matching subscriptions
    {
      const points = [];
      for (const n of MATCH_POINTS) {
        await deleteSubscriptions(ctx, 'bench-m-');
        await cloneSubscriptions(ctx, matching.id, n - 1, 'bench-m-');
        await settleDatabase(ctx);
        const m = await measure(ctx, { ...opts, token: false });
        assert.ok(m.events >= m.writes * n, `${m.writes} writes x ${n} matching, only ${m.events} events`);
        points.push({ n, m });
      }
      await deleteSubscriptions(ctx, 'bench-m-');
      const label = (n) => `${n.toLocaleString('en-US')} matching`;
      reportSeries({ series: 'C matching subscriptions', metric: 'events recorded', unit: 'events/s', label, points, pick: (m) => m.eventRate, what: 'linear in matching: per-event cost flat' });
      reportSeries({ series: 'C matching subscriptions', metric: 'captured writes', unit: 'req/s', label, points, pick: (m) => m.write, target: false });
    }

    elapsed('series C done');
    // D: stored events (appended to a live subscription that these writes do not match)
    {
      const points = [];
      let stored = await eventTotal(ctx);
      for (const n of EVENT_POINTS) {
        if (n > stored) await seedEvents(ctx, otherType.id, n - stored);
        await settleDatabase(ctx);
        stored = await eventTotal(ctx);
        const m = await measure(ctx, opts);
        points.push({ n, m });
        stored += m.events;
      }
      const label = (n) => `${n.toExponential(0).replace('e+', 'e')} stored events`;
      reportSeries({ series: 'D stored events', metric: 'token issuance', unit: 'req/s', label, points, pick: (m) => m.token, what: 'flat', command: 'tokenCommand' });
      reportSeries({ series: 'D stored events', metric: 'captured writes', unit: 'req/s', label, points, pick: (m) => m.write, what: 'flat' });
      elapsed('series D done');
    }
  } finally {
    await ctx.stop();
  }
});
