#!/usr/bin/env node
// Item 2: end-to-end latency. One websocket client bound (directly on the notifier) to one
// R4 backport subscription on patient-change (id-only); POST Patient through httpd at a
// fixed offered rate (BENCH_LATENCY_RATE, 200/s). Added latency = websocket arrival - HTTP
// response arrival, both stamped with CLOCK_MONOTONIC in the same process (bench/wsload).
// Baseline, same run, same rate, same generator: the same POST sent directly to the FHIR
// backend (its own time). 10,000 measured writes (quick: 1,000) after a warm-up.
import { report } from './lib/bench.mjs';
import { apiToken, buildWsload, createPatientSub, dist, header, QUICK, runWsload, tokenFile, withStack } from './lib/ws.mjs';

const RATE = Number(process.env.BENCH_LATENCY_RATE ?? 200);
const WRITES = QUICK ? 1000 : 10_000;
const WARMUP = QUICK ? 50 : 200;

await buildWsload();
header(`2. End-to-end latency: ${WRITES} writes (after ${WARMUP} warm-up) at ${RATE}/s offered`);
const ok = await withStack({ clients: 1 }, async (ctx, cleanups) => {
  const sub = await createPatientSub(ctx);
  const tokens = tokenFile([await apiToken(ctx, [sub.id])]);
  cleanups.push(tokens.cleanup);
  const timeout = Math.ceil((WRITES + WARMUP) / RATE) + 60;
  const direct = await runWsload(ctx, { http: 'backend', writes: WRITES + WARMUP, warmup: WARMUP, rate: RATE, timeout });
  const e2e = await runWsload(ctx, {
    clients: 1, tokens: tokens.file, http: 'httpd', writes: WRITES + WARMUP, warmup: WARMUP, rate: RATE, timeout, rssPid: ctx.nt.pid,
  });
  const exact = e2e.per_client_min === e2e.writes && e2e.per_client_max === e2e.writes && e2e.disorder === 0;
  const commands = [direct.command, e2e.command];
  const note = `offered ${RATE} writes/s (achieved ${e2e.rate_achieved.toFixed(0)}/s through httpd, ${direct.rate_achieved.toFixed(0)}/s direct); ` +
    `write through httpd: ${dist(e2e.http_ms)}; direct: ${dist(direct.http_ms)}; added: ${dist(e2e.added_ms)}; ` +
    `${e2e.events_total} notifications for ${e2e.writes} writes, exactly once in order: ${exact ? 'yes' : 'NO'}; notifier CPU ${e2e.notifier_cpu_s} s`;
  const base = (q) => ({ name: `direct backend write ${q} (its own time)`, value: direct.http_ms[q] });
  report({ item: '2', name: 'added latency p50 (websocket - HTTP response)', value: e2e.added_ms.p50, unit: 'ms', baseline: base('p50'), targets: [{ text: 'p50 <= 2 ms added', met: e2e.added_ms.p50 <= 2 }], commands, note });
  report({ item: '2', name: 'added latency p99', value: e2e.added_ms.p99, unit: 'ms', baseline: base('p99'), targets: [{ text: 'p99 <= 10 ms added', met: e2e.added_ms.p99 <= 10 }], commands });
  report({ item: '2', name: 'added latency max', value: e2e.added_ms.max, unit: 'ms', baseline: base('max'), commands });
  report({ item: '2', name: 'write through httpd p50 (HTTP response time)', value: e2e.http_ms.p50, unit: 'ms', baseline: base('p50'), commands });
  const fine = direct.exitCode === 0 && e2e.exitCode === 0 && exact && e2e.added_ms.n === WRITES;
  if (!fine) console.log(`wsload reported problems:\n${direct.stderr}${e2e.stderr}`);
  return fine;
});
process.exit(ok ? 0 : 1);
