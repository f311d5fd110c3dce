#!/usr/bin/env node
// Item 4: write throughput through httpd + mod_proxy to the FHIR backend with mod_fhirsub's
// capture on (the FhirSub location) against capture off (a plain proxy location of the same
// httpd to the same backend), measured in turns in the same run. Target: >= 0.9.
// Two "on" figures, both against 10 live subscriptions (5 on the written type's topic with
// other filter values, 4 on another type's topic, 1 that matches only the "event" writes):
//   - no event: every write is captured, its candidates read and matched, nothing recorded;
//   - one event per write: besides, a change row and a numbered event row are committed
//     (durably: events never relax) before the worker takes the connection's next request.
// The recorded events are counted: one per answered "event" write, none for the others.
import assert from 'node:assert/strict';
import { backportBody, TOPIC } from '../tests/integration/lib/fhirsub.mjs';
import { benchSettings, countRows, createSubscription, IDENT, interleave, median, patient, report, request, runBench, settledCount, startBenchStack, withCpu, wrk } from './lib/bench.mjs';

const RATIO_TARGET = 0.9;

/** The 10 subscriptions of "capture on": returns the matching one's id. */
async function subscribeTen(ctx, value) {
  const sub = (topic, filters) => createSubscription(ctx.fhirUrl, backportBody({ topic, filters, heartbeat: null, maxCount: null }));
  const matching = await sub(TOPIC.patientChange, [`Patient?identifier=${IDENT}|${value}`]);
  for (let i = 0; i < 5; i++) await sub(TOPIC.patientChange, [`Patient?identifier=${IDENT}|other-${i}`]);
  for (let i = 0; i < 4; i++) await sub(TOPIC.encounterComplete, [`Encounter?patient=Patient/other-${i}`]);
  return matching.id;
}

function eventCount(ctx, subId) {
  return settledCount(ctx, 'fhirsub_event', `subscription_id = '${subId}'`);
}

await runBench(async () => {
  const { seconds, rounds } = benchSettings();
  const connections = 16;
  const ctx = await startBenchStack();
  try {
    const subId = await subscribeTen(ctx, 'bench-writer');
    const body = patient('bench-writer');
    const quiet = patient('bench-no-subscription');
    const headers = { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' };
    for (const url of [ctx.fhirUrl, ctx.plainUrl]) {
      const res = await request(`${url}/Patient`, { method: 'POST', body });
      assert.equal(res.status, 201, `${url}: ${res.text.slice(0, 300)}`);
    }
    const before = await eventCount(ctx, subId);
    assert.equal(before, 1, 'the one write through the FhirSub location made one event, the plain one none');
    const totalBefore = await countRows(ctx, 'fhirsub_event');
    // httpd's CPU per write besides the rate: what the capture costs, whatever else the
    // machine runs (the rate depends on the backend and the other load on the same cores)
    const httpdPids = () => ctx.stack.httpd.pids();
    const write = (url, b) => withCpu(httpdPids, () => wrk(`${url}/Patient`, { method: 'POST', body: b, headers, connections }));
    const results = await interleave(
      { off: write(ctx.plainUrl, body), quiet: write(ctx.fhirUrl, quiet), event: write(ctx.fhirUrl, body) },
      { rounds },
    );
    const answered = results.event.runs.reduce((n, r) => n + r.requests, 0);
    const recorded = (await eventCount(ctx, subId)) - before;
    assert.ok(recorded >= answered, `${answered} captured writes answered, only ${recorded} events recorded`);
    assert.ok(recorded <= answered + connections * rounds, `${recorded} events for ${answered} captured writes: the plain location must record none`);
    assert.equal((await countRows(ctx, 'fhirsub_event')) - totalBefore, recorded, 'writes matching no subscription record no event');

    const common = `median of ${rounds} turn(s) of ${seconds} s, ${connections} connections, POST Patient`;
    const off = { name: 'capture off (plain mod_proxy location, same httpd and backend)', value: results.off.rps };
    for (const [key, name, extra] of [
      ['quiet', 'write throughput, capture on, no subscription matching (10 live, 6 candidates)', ''],
      ['event', 'write throughput, capture on, 1 event per write (1 of 10 subscriptions matching)', `; ${recorded} events recorded for ${answered} answered writes`],
    ]) {
      const ratio = results[key].rps / results.off.rps;
      report({
        item: '4',
        name,
        value: results[key].rps,
        unit: 'req/s',
        baseline: off,
        targets: [{ text: `ratio >= ${RATIO_TARGET}`, met: ratio >= RATIO_TARGET }],
        commands: [results[key].runs[0].command.replace(ctx.fhirUrl, 'FHIR_BASE')],
        note: `${common}; p99 ${results[key].runs.at(-1).p99Ms} ms, off ${results.off.runs.at(-1).p99Ms} ms${extra}`,
      });
    }
    const cpu = (key) => median(results[key].runs.map((r) => r.cpuPerRequestUs));
    for (const [key, name] of [['quiet', 'capture on, no event'], ['event', 'capture on, 1 event per write']]) {
      report({
        item: '4',
        name: `httpd CPU per write, ${name}`,
        value: cpu(key),
        unit: 'us',
        baseline: { name: 'httpd CPU per write, capture off (same run)', value: cpu('off') },
        note: `all httpd processes of the stack (/proc/PID/stat), median of ${rounds} turn(s); added by the capture: ${(cpu(key) - cpu('off')).toFixed(1)} us per write`,
      });
    }
  } finally {
    await ctx.stop();
  }
});
