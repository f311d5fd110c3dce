#!/usr/bin/env node
// Item 5, websocket side: how end-to-end latency (item 2) and fan-out (item 3) change as
// the subscriptions (10 -> 10,000) and the stored events (10^3 -> 10^6) grow, while what
// matches stays the same: one bound subscription on patient-change matches every write; the
// other subscriptions are on the same topic and resource type with a filter no write
// matches (the costliest kind to leave out). Each point: W writes at 200/s to 1 client
// (added latency p50/p99, as bench 02), and 10 writes to C clients on that subscription
// (notifications/s and bind time, as bench 03 (a)). After each bulk insert the database is
// settled as a running server's would be (settleDatabase). Baseline: the first point of the
// axis, same run. Quick: fewer points, writes and clients.
import { cloneSubscriptions, report, seedEvents, settleDatabase } from './lib/bench.mjs';
import { apiToken, buildWsload, createPatientSub, header, QUICK, runWsload, tokenFile, withStack } from './lib/ws.mjs';

const SUBS = QUICK ? [10, 1000] : [10, 100, 1000, 10_000];
const EVENTS = QUICK ? [1000, 100_000] : [1000, 10_000, 100_000, 1_000_000];
const WRITES = QUICK ? 300 : 1000;
const CLIENTS = QUICK ? 200 : 1000;
const NOMATCH = ['Patient?identifier=urn:fhirsub-bench|matches-no-write'];

async function measure(ctx, tokens) {
  const lat = await runWsload(ctx, { clients: 1, tokens, http: 'httpd', writes: WRITES + 20, warmup: 20, rate: 200, timeout: 120 });
  const fan = await runWsload(ctx, { clients: CLIENTS, tokens, http: 'httpd', writes: 10, rate: 0, timeout: 120 });
  for (const r of [lat, fan]) {
    if (r.exitCode !== 0 || r.per_client_min !== r.expect_per_client || r.per_client_max !== r.expect_per_client || r.disorder) {
      const seen = `exit ${r.exitCode}, ${r.bound}/${r.clients} bound, per client min ${r.per_client_min} max ${r.per_client_max} of ${r.expect_per_client}, ` +
        `${r.disorder} out of order, ${r.write_failures} failed writes`;
      throw new Error(`wsload did not deliver every event exactly once (${seen}; ${r.command}):\n${r.stderr}`);
    }
  }
  return { lat, fan };
}

// "Flat or logarithmic in everything else": from the first point to the last (1,000 times
// more), at most twice the latency and at least half the rate.
function reportPoint(axis, label, m, first, last) {
  const commands = [m.lat.command, m.fan.command];
  const base = first ?? m;
  const baseName = first ? `first point of the axis` : 'this point';
  const flat = (text, met) => (last ? [{ text, met }] : []);
  report({
    item: '5-ws', name: `added latency p50 at ${label}`, value: m.lat.added_ms.p50, unit: 'ms', baseline: { name: baseName, value: base.lat.added_ms.p50 },
    targets: flat('flat or logarithmic: <= 2x the first point', m.lat.added_ms.p50 <= 2 * base.lat.added_ms.p50), commands,
    note: `${axis}; HTTP write p50 ${m.lat.http_ms.p50} ms`,
  });
  report({ item: '5-ws', name: `added latency p99 at ${label}`, value: m.lat.added_ms.p99, unit: 'ms', baseline: { name: baseName, value: base.lat.added_ms.p99 }, commands });
  report({
    item: '5-ws', name: `fan-out to ${CLIENTS} clients at ${label}`, value: m.fan.rate_per_s, unit: 'notifications/s', baseline: { name: baseName, value: base.fan.rate_per_s },
    targets: flat('flat or logarithmic: >= 0.5x the first point', m.fan.rate_per_s >= 0.5 * base.fan.rate_per_s), commands,
  });
  report({ item: '5-ws', name: `bind of ${CLIENTS} clients at ${label}`, value: m.fan.bind_s * 1000, unit: 'ms', baseline: { name: baseName, value: base.fan.bind_s * 1000 }, commands });
}


/** The bound subscription, its token in a file, and the first non-matching one. */
async function setUp(ctx, cleanups) {
  const sub = await createPatientSub(ctx);
  const tokens = tokenFile([await apiToken(ctx, [sub.id])]);
  cleanups.push(tokens.cleanup);
  const other = await createPatientSub(ctx, { filters: NOMATCH });
  return { sub, tokens: tokens.file, other };
}

await buildWsload();
header(`5. Scaling (websocket side): subscriptions ${SUBS.join(', ')}; stored events ${EVENTS.join(', ')}`);
await withStack({ clients: CLIENTS }, async (ctx, cleanups) => {
  const { tokens, other } = await setUp(ctx, cleanups);
  let first = null;
  let live = 2;
  for (const total of SUBS) {
    await cloneSubscriptions(ctx, other.id, total - live, `other-${live}-`, { distinct: 'matches-no-write' });
    await settleDatabase(ctx);
    live = total;
    const m = await measure(ctx, tokens);
    reportPoint('subscriptions axis (1 matching, the rest filtered out)', `${total} subscriptions`, m, first, total === SUBS.at(-1));
    first ??= m;
  }
});
await withStack({ clients: CLIENTS }, async (ctx, cleanups) => {
  const { sub, tokens, other } = await setUp(ctx, cleanups);
  await cloneSubscriptions(ctx, other.id, SUBS[0] - 2, 'other-', { distinct: 'matches-no-write' });
  let first = null;
  let stored = 0;
  for (const total of EVENTS) {
    const t0 = Date.now();
    await seedEvents(ctx, sub.id, total - stored);
    await settleDatabase(ctx);
    console.log(`seeded ${total - stored} events in ${Date.now() - t0} ms`);
    stored = total;
    const m = await measure(ctx, tokens);
    reportPoint('stored events axis (on the bound subscription itself)', `${total} stored events`, m, first, total === EVENTS.at(-1));
    first ??= m;
  }
});
