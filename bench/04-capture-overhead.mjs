#!/usr/bin/env node
// Item 4: write throughput through httpd + mod_proxy to the FHIR backend with mod_fhirsub's
// capture on (the FhirSub location) against capture off (a plain proxy location of the same
// httpd to the same backend), measured in turns in the same run. Target: >= 0.9.
// "On" is the costly case: every write is captured, matched against 10 live subscriptions
// (1 matching, 9 not: other topics and other filter values) and records one event (change
// row, numbered event row, committed before the next write of that subscription).
// The recorded events are counted: at least one per answered write through the FhirSub
// location, and none for the plain location's writes.
import assert from 'node:assert/strict';
import { backportBody, TOPIC } from '../tests/integration/lib/fhirsub.mjs';
import { benchSettings, createSubscription, IDENT, interleave, patient, report, request, runBench, settledCount, startBenchStack, wrk } from './lib/bench.mjs';

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
    const headers = { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' };
    for (const url of [ctx.fhirUrl, ctx.plainUrl]) {
      const res = await request(`${url}/Patient`, { method: 'POST', body });
      assert.equal(res.status, 201, `${url}: ${res.text.slice(0, 300)}`);
    }
    const before = await eventCount(ctx, subId);
    assert.equal(before, 1, 'the one write through the FhirSub location made one event, the plain one none');
    const write = (url) => () => wrk(`${url}/Patient`, { method: 'POST', body, headers, connections });
    const results = await interleave({ off: write(ctx.plainUrl), on: write(ctx.fhirUrl) }, { rounds });
    const answered = results.on.runs.reduce((n, r) => n + r.requests, 0);
    const recorded = (await eventCount(ctx, subId)) - before;
    assert.ok(recorded >= answered, `${answered} captured writes answered, only ${recorded} events recorded`);
    assert.ok(recorded <= answered + connections * rounds, `${recorded} events for ${answered} captured writes: the plain location must record none`);

    const ratio = results.on.rps / results.off.rps;
    report({
      item: '4',
      name: 'write throughput, capture on (POST Patient, 1 of 10 subscriptions matching: 1 event per write)',
      value: results.on.rps,
      unit: 'req/s',
      baseline: { name: 'capture off (plain mod_proxy location, same httpd and backend)', value: results.off.rps },
      targets: [{ text: `ratio >= ${RATIO_TARGET}`, met: ratio >= RATIO_TARGET }],
      commands: [results.on.runs[0].command.replace(ctx.fhirUrl, 'FHIR_BASE')],
      note: `median of ${rounds} turn(s) of ${seconds} s, ${connections} connections; p99 on ${results.on.runs.at(-1).p99Ms} ms, off ${results.off.runs.at(-1).p99Ms} ms; ${recorded} events recorded for ${answered} answered writes. The backend (Node, Medplum in-memory) bounds both rates`,
    });
  } finally {
    await ctx.stop();
  }
});
