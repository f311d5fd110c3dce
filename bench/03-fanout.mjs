#!/usr/bin/env node
// Item 3: fan-out. N websocket clients (bench/wsload) bound at once on one notifier, plain ws,
// in two layouts, then layout (a) again over wss:
//   (a) all N bound to one subscription (one token); K writes: N x K notifications;
//   (b) N subscriptions, each bound by one client with its own token; K writes, each
//       matching all N subscriptions: N x K notifications.
// Figures: notifications delivered per second (first write sent -> last notification
// arrived), per-client counts (min/max of K: nobody starved, exactly once, in order), notifier
// RSS per idle bound connection ((VmRSS after binding and 1 s idle - VmRSS before connecting)
// / N). Baselines from the same run: the same K writes delivered to 1 client; the RSS per
// idle connection that never binds (a fresh notifier: what lws and the kernel side hold
// before anything of ours); plain ws for wss. N = 10,000 (quick: 1,000), K = 20 (BENCH_FANOUT_CLIENTS,
// BENCH_FANOUT_WRITES).
import { cloneSubscriptions, report } from './lib/bench.mjs';
import {
  apiToken, buildWsload, createPatientSub, dist, header, QUICK, runWsload, seedTokens, selfSignedCert, startFreshNotifier, tokenFile,
  withStack,
} from './lib/ws.mjs';

const N = Number(process.env.BENCH_FANOUT_CLIENTS ?? (QUICK ? 1000 : 10_000));
const K = Number(process.env.BENCH_FANOUT_WRITES ?? 20);

const exactly = (r) => r.bound === r.clients && r.per_client_min === r.expect_per_client && r.per_client_max === r.expect_per_client && r.disorder === 0 && r.write_failures === 0;
const kib = (bytes) => bytes / 1024;

function describe(r) {
  return `${r.bound}/${r.clients} bound in ${r.bind_s.toFixed(2)} s; ${r.events_total} notifications in ${r.span_s.toFixed(3)} s; ` +
    `per client min ${r.per_client_min} max ${r.per_client_max} of ${r.expect_per_client}, exactly once in order: ${exactly(r) ? 'yes' : 'NO'}; ` +
    `notifier RSS ${r.rss_kb.before} -> ${r.rss_kb.bound} KiB bound idle, ${r.rss_kb.end} KiB after delivery; ` +
    `delay after the HTTP response ${dist(r.added_ms)}; notifier CPU ${r.notifier_cpu_s} s, wsload CPU ${r.wsload_cpu_s} s`;
}


/** (a): one subscription, one token (from the API) for every client. */
async function layoutA(ctx, cleanups, { clients, tls } = {}) {
  const sub = await createPatientSub(ctx);
  const tokens = tokenFile([await apiToken(ctx, [sub.id])]);
  cleanups.push(tokens.cleanup);
  return runWsload(ctx, { clients, tokens: tokens.file, tls, http: 'httpd', writes: K, rate: 0, rssPid: ctx.nt.pid, timeout: 240 });
}

/** (b): one subscription (one made through the API, the rest copies of its row) and one token per client. */
async function layoutB(ctx, cleanups, { clients }) {
  const template = await createPatientSub(ctx);
  await cloneSubscriptions(ctx, template.id, clients - 1, 'fanout-');
  const ids = [template.id, ...Array.from({ length: clients - 1 }, (_, i) => `fanout-${i + 1}`)];
  const tokens = tokenFile(await seedTokens(ctx, ids));
  cleanups.push(tokens.cleanup);
  // one writer: each write records N events; concurrent ones would only queue on the lock
  const walBefore = await walPosition(ctx);
  const r = await runWsload(ctx, { clients, tokens: tokens.file, http: 'httpd', writes: K, rate: 0, writers: 1, rssPid: ctx.nt.pid, timeout: 240, drain: 60 });
  if (walBefore !== null) r.wal_bytes = (await walPosition(ctx)) - walBefore;
  return r;
}

/** PostgreSQL: the WAL written so far (bytes), null on SQLite. */
async function walPosition(ctx) {
  if (ctx.db !== 'pgsql') return null;
  return Number((await ctx.query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"))[0][0]);
}

function reportRate(label, r, base, extraTargets = []) {
  report({
    item: '3', name: `${label}: notifications/s`, value: r.rate_per_s, unit: 'notifications/s',
    baseline: { name: 'the same writes to 1 bound client', value: base.rate_per_s },
    targets: [{ text: '>= 100,000 notifications/s', met: r.rate_per_s >= 100_000 }, { text: 'no client starved (every client got every event once, in order)', met: exactly(r) }, ...extraTargets],
    commands: [r.command, base.command], note: describe(r),
  });
}

function reportRss(label, r, baseline, extra = {}) {
  report({
    item: '3', name: `${label}: notifier RSS per idle bound connection`, value: kib(r.rss_per_conn_bytes), unit: 'KiB',
    baseline: extra.baseline ?? { name: 'per idle connection that never binds (fresh notifier)', value: kib(baseline.rss_per_conn_bytes) },
    targets: extra.targets ?? [{ text: '<= 20 KB per idle bound connection', met: r.rss_per_conn_bytes <= 20_000 }],
    commands: [r.command, ...(baseline ? [baseline.command] : [])],
  });
}

/** N connections that upgrade and never bind, on a fresh notifier: the memory baseline. */
async function unbound(ctx, clients) {
  const nt = await startFreshNotifier(ctx, { clients });
  try {
    return await runWsload(ctx, { clients, noBind: true, nt, rssPid: nt.pid, timeout: 120 });
  } finally {
    await nt.stop();
  }
}

await buildWsload();
header(`3. Fan-out: ${N} clients, ${K} writes`);
const all = [];
let one;
let idle;
await withStack({ clients: N }, async (ctx, cleanups) => {
  one = await layoutA(ctx, cleanups, { clients: 1 });
  const a = await layoutA(ctx, cleanups, { clients: N });
  idle = await unbound(ctx, N);
  all.push(one, a);
  reportRate(`(a) ${N} clients on 1 subscription`, a, one);
  reportRss(`(a) ${N} clients on 1 subscription`, a, idle);
});
await withStack({ clients: N }, async (ctx, cleanups) => {
  const b = await layoutB(ctx, cleanups, { clients: N });
  all.push(b);
  reportRate(`(b) ${N} subscriptions bound once, each write matching all`, b, one);
  reportRss(`(b) ${N} subscriptions bound once`, b, idle);
  if (b.wal_bytes !== undefined) {
    report({
      item: '3', name: `(b) PostgreSQL WAL per write matching ${N} (binds, recording, delivery marks)`, value: b.wal_bytes / K / 1e6, unit: 'MB',
      targets: [], commands: [b.command], note: `${(b.wal_bytes / 1e6).toFixed(1)} MB of WAL during the whole run of ${K} writes (pg_current_wal_lsn before and after)`,
    });
  }
});
const plain = all[1];
const cert = await selfSignedCert();
try {
  await withStack({ clients: N, tls: cert }, async (ctx, cleanups) => {
    const w = await layoutA(ctx, cleanups, { clients: N, tls: true });
    all.push(w);
    report({
      item: '3', name: `(a) over wss (TLS 1.3), ${N} clients: notifications/s`, value: w.rate_per_s, unit: 'notifications/s',
      baseline: { name: 'plain ws, same layout, same run', value: plain.rate_per_s },
      targets: [{ text: 'no client starved', met: exactly(w) }], commands: [w.command], note: describe(w),
    });
    reportRss(`(a) over wss, ${N} clients`, w, null, { baseline: { name: 'plain ws, same layout, same run', value: kib(plain.rss_per_conn_bytes) }, targets: [] });
  });
} finally {
  cert.cleanup();
}
const failed = all.filter((r) => !exactly(r) || r.exitCode !== 0);
if (idle.bound !== N) failed.push(idle);
if (failed.length) console.log(`wsload reported problems:\n${failed.map((r) => r.stderr).join('\n')}`);
process.exit(failed.length ? 1 : 0);
