// The event pipeline end to end: FHIR writes through Apache httpd (mod_proxy) to the real FHIR
// backend are captured by mod_fhirsub, matched against subscriptions, recorded as numbered
// events, delivered by fhirsub-notifier over websockets and served by Subscription/[id]/$events.
// Writes of Patient, Encounter and Observation (create, update, patch, delete, conditional
// update and delete, transaction and batch Bundles, matched on the versions before them; Bundles
// over the capture bound), failed writes, filters and topic criteria, the three payload levels in
// the R4 backport and R5 shapes (field by field), and Medplum's own client.
// Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { backportBody, basicAuthHeader, classicBody, createSub, r5Body, TOPIC, USERS } from './lib/fhirsub.mjs';
import {
  IDENT_SYSTEM,
  assertDbEvents,
  assertNotification,
  dbEventsSinceStart,
  eventNumbers,
  eventView,
  fetchEvents,
  patientBody,
  sleep,
  startEventStack,
  subscribe,
  uniq,
  waitForDbEvents,
  write,
} from './lib/events.mjs';
import { waitFor } from './lib/util.mjs';

const LOINC = 'http://loinc.org';
const CLASSIC_CODE = '1234-5'; // the classic subscription's code: no other test writes it
const QUIET_MS = 1500; // a failed write must not produce a message within this bounded wait
const CAPTURE_MAX = 256 * 1024; // FhirSubCaptureMaxBody of both bases here

let ctx;
let medplum;

before(async () => {
  ctx = await startEventStack({ locationDirectives: [`FhirSubCaptureMaxBody ${CAPTURE_MAX}`] });
});

after(async () => {
  medplum?.getSubscriptionManager?.().closeWebSocket();
  await sleep(200);
  await ctx?.stop();
});

/** Backport (R4 base) subscription to a topic with filters, no heartbeat. */
function backportSub(topic, filters, content) {
  return createSub(ctx.r4.alice, backportBody({ topic, filters, content, heartbeat: null, maxCount: null }));
}

/** R5 (R5 base) subscription to a topic with filterBy, no heartbeat. */
function r5Sub(topic, filterBy, content) {
  return createSub(ctx.r5.alice, r5Body({ topic, filterBy, content, heartbeatPeriod: null, maxCount: null }));
}

/** Expectations of one event for assertNotification/$events. */
function ev(number, res, { method, url, status, deleted = false, resource } = {}) {
  return { number, focus: `${res.resourceType}/${res.id}`, method, url, status: String(status), deleted, resource };
}

// ---- payload levels x shapes ----------------------------------------------------------------

describe('payload content in both FHIR shapes', () => {
  test('create, update, delete of a Patient: empty, id-only and full-resource as R4 backport and R5; websocket = $events = database', async () => {
    const ident = uniq('levels');
    const levels = ['empty', 'id-only', 'full-resource'];
    const subs = [];
    for (const content of levels) {
      subs.push({
        shape: 'backport',
        base: ctx.r4Url,
        client: ctx.r4.alice,
        content,
        sub: await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], content),
      });
      subs.push({
        shape: 'r5',
        base: ctx.r5Url,
        client: ctx.r5.alice,
        content,
        sub: await r5Sub(TOPIC.patientChange, [{ resourceType: 'Patient', filterParameter: 'identifier', value: `${IDENT_SYSTEM}|${ident}` }], content),
      });
    }
    // one connection per base carries its three subscriptions
    const sockets = {
      backport: await subscribe(ctx, ctx.r4.alice, subs.filter((s) => s.shape === 'backport').map((s) => s.sub)),
      r5: await subscribe(ctx, ctx.r5.alice, subs.filter((s) => s.shape === 'r5').map((s) => s.sub)),
    };
    for (const s of subs) {
      s.ws = sockets[s.shape];
      s.live = {};
      assertNotification(s.ws.handshakes[s.sub.id], { shape: s.shape, base: s.base, subId: s.sub.id, type: 'handshake', content: s.content, since: 0 });
    }
    const expected = [];
    const expectEverywhere = async (e) => {
      expected.push(e);
      for (const s of subs) {
        const m = await s.ws.next(s.sub.id);
        assertNotification(m, {
          shape: s.shape,
          base: s.base,
          subId: s.sub.id,
          type: 'event-notification',
          content: s.content,
          since: e.number,
          topic: TOPIC.patientChange,
          events: [e],
        });
        s.live[e.number] = m;
      }
    };

    // create through the R4 base
    const body = patientBody(ident, { name: [{ family: 'Levels', given: ['Ann'] }], gender: 'female', birthDate: '1970-01-02' });
    const created = await write(ctx.r4.alice, 'POST', 'Patient', body, { status: 201 });
    await expectEverywhere(ev(1, created.body, { method: 'POST', url: 'Patient', status: 201, resource: created.body }));
    assert.deepEqual(created.body.name, body.name, 'the backend kept the written values');

    // update through the R5 base, with If-Match
    const changed = { ...created.body, gender: 'other', name: [{ family: 'Levels', given: ['Bea'] }] };
    const updated = await write(ctx.r5.alice, 'PUT', `Patient/${created.body.id}`, changed, { status: 200, headers: { 'If-Match': created.headers.etag } });
    assert.equal(updated.body.gender, 'other');
    await expectEverywhere(ev(2, updated.body, { method: 'PUT', url: `Patient/${created.body.id}`, status: 200, resource: updated.body }));

    // delete through the R4 base: the filter is tested on the deleted version
    const deleted = await write(ctx.r4.alice, 'DELETE', `Patient/${created.body.id}`, undefined, { status: (s) => s === 200 || s === 204 });
    await expectEverywhere(ev(3, created.body, { method: 'DELETE', url: `Patient/${created.body.id}`, status: deleted.status, deleted: true }));

    for (const s of Object.values(sockets)) await s.expectQuiet(500);
    for (const s of subs) {
      // $events serves the same three events, field for field
      const all = await fetchEvents(s.client, s.sub.id);
      assertNotification(all, { shape: s.shape, base: s.base, subId: s.sub.id, type: 'query-event', content: s.content, since: 3, topic: TOPIC.patientChange, events: expected });
      for (const e of expected) {
        assert.deepEqual(eventView(all, e.number), eventView(s.live[e.number], e.number), `${s.shape} ${s.content}: event ${e.number} on the websocket and in $events`);
      }
      // a window of one event
      const one = await fetchEvents(s.client, s.sub.id, { since: 2, until: 2 });
      // (what events-since-start such a window reports: see the $events test below)
      assertNotification(one, { shape: s.shape, base: s.base, subId: s.sub.id, type: 'query-event', content: s.content, since: null, topic: TOPIC.patientChange, events: [expected[1]] });
      assert.deepEqual(eventView(one, 2), eventView(all, 2));
      await assertDbEvents(ctx.stack, s.sub.id, 3);
    }
    for (const s of Object.values(sockets)) await s.close();
  });

  test('$events with eventsUntilNumber below the count still reports the real events-since-subscription-start', async () => {
    const ident = uniq('win');
    const sub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'id-only');
    // each write's event recorded before the next write: events are recorded after the
    // answer, so a write sent at once could be numbered first (a documented limit)
    const p = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
    await waitForDbEvents(ctx.stack, sub.id, 1);
    await write(ctx.r4.alice, 'PUT', `Patient/${p.body.id}`, { ...p.body, gender: 'female' }, { status: 200 });
    await waitForDbEvents(ctx.stack, sub.id, 2);
    await write(ctx.r4.alice, 'PUT', `Patient/${p.body.id}`, { ...p.body, gender: 'male' }, { status: 200 });
    await waitForDbEvents(ctx.stack, sub.id, 3);
    const window = await fetchEvents(ctx.r4.alice, sub.id, { until: 1 });
    assert.deepEqual(notificationCount(window), 1);
    assertNotification(window, {
      shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'query-event', content: 'id-only', since: 3, topic: TOPIC.patientChange,
      events: [ev(1, p.body, { method: 'POST', url: 'Patient', status: 201 })],
    });
  });
});

// ---- resource types and interactions ------------------------------------------------------

describe('writes of several resource types', () => {
  test('Observation create, JSON Patch, update, delete and Encounter create reach their subscriptions with the written values', async () => {
    const pid = uniq('pt');
    const obsSub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'full-resource');
    const encSub = await backportSub(TOPIC.encounterStart, [`Encounter?patient=Patient/${pid}`], 'id-only');
    const r5Obs = await r5Sub(TOPIC.observationChange, [{ resourceType: 'Observation', filterParameter: 'patient', value: `Patient/${pid}` }], 'full-resource');
    const ws = await subscribe(ctx, ctx.r4.alice, [obsSub, encSub]);
    const ws5 = await subscribe(ctx, ctx.r5.alice, [r5Obs]);
    const obsEvents = [];
    const expectObs = async (e) => {
      obsEvents.push(e);
      assertNotification(await ws.next(obsSub.id), {
        shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'event-notification', content: 'full-resource', since: e.number, topic: TOPIC.observationChange, events: [e],
      });
      assertNotification(await ws5.next(r5Obs.id), {
        shape: 'r5', base: ctx.r5Url, subId: r5Obs.id, type: 'event-notification', content: 'full-resource', since: e.number, topic: TOPIC.observationChange, events: [e],
      });
    };

    const obsBody = {
      resourceType: 'Observation',
      status: 'preliminary',
      code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }] },
      subject: { reference: `Patient/${pid}` },
      valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
    };
    const obs = await write(ctx.r4.alice, 'POST', 'Observation', obsBody, { status: 201 });
    await expectObs(ev(1, obs.body, { method: 'POST', url: 'Observation', status: 201, resource: { ...obsBody, id: obs.body.id, meta: obs.body.meta } }));

    // PATCH: the event carries the resource the server answered, never the patch document
    const patched = await write(ctx.r4.alice, 'PATCH', `Observation/${obs.body.id}`, [
      { op: 'replace', path: '/status', value: 'final' },
      { op: 'replace', path: '/valueQuantity/value', value: 75 },
    ], { status: 200 });
    assert.equal(patched.body.valueQuantity.value, 75);
    await expectObs(ev(2, patched.body, { method: 'PATCH', url: `Observation/${obs.body.id}`, status: 200, resource: { status: 'final', valueQuantity: patched.body.valueQuantity, meta: patched.body.meta } }));

    // an Encounter of the same patient: its own topic, its own subscription
    const enc = await write(ctx.r4.alice, 'POST', 'Encounter', {
      resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${pid}` },
    }, { status: 201 });
    assertNotification(await ws.next(encSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: encSub.id, type: 'event-notification', content: 'id-only', since: 1, topic: TOPIC.encounterStart,
      events: [ev(1, enc.body, { method: 'POST', url: 'Encounter', status: 201 })],
    });

    const put = await write(ctx.r4.alice, 'PUT', `Observation/${obs.body.id}`, { ...patched.body, interpretation: [{ text: 'normal' }] }, { status: 200 });
    await expectObs(ev(3, put.body, { method: 'PUT', url: `Observation/${obs.body.id}`, status: 200, resource: { interpretation: [{ text: 'normal' }], meta: put.body.meta } }));
    const del = await write(ctx.r4.alice, 'DELETE', `Observation/${obs.body.id}`, undefined, { status: (s) => s === 200 || s === 204 });
    await expectObs(ev(4, put.body, { method: 'DELETE', url: `Observation/${obs.body.id}`, status: del.status, deleted: true }));

    await ws.expectQuiet(500);
    await ws5.expectQuiet(0);
    const all = await fetchEvents(ctx.r4.alice, obsSub.id);
    assertNotification(all, { shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'query-event', content: 'full-resource', since: 4, topic: TOPIC.observationChange, events: obsEvents });
    await assertDbEvents(ctx.stack, obsSub.id, 4);
    await assertDbEvents(ctx.stack, r5Obs.id, 4);
    await assertDbEvents(ctx.stack, encSub.id, 1);
    await ws.close();
    await ws5.close();
  });
});

// ---- Bundles ---------------------------------------------------------------------------------

describe('transaction and batch Bundles posted to the base', () => {
  test('one event per matching successful entry, in entry order; failed entries and refused Bundles make none', async () => {
    const pid = uniq('txp');
    const other = uniq('txo');
    const patSub = await backportSub(TOPIC.patientChange, [`Patient?_id=${pid}`], 'id-only');
    const encSub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${pid}`], 'full-resource');
    const obsSub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'full-resource');
    const obs5 = await r5Sub(TOPIC.observationChange, [{ resourceType: 'Observation', filterParameter: 'subject', value: `Patient/${pid}` }], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [patSub, encSub, obsSub]);
    const ws5 = await subscribe(ctx, ctx.r5.alice, [obs5]);
    const observation = (subject, code) => ({
      resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code }] }, subject: { reference: `Patient/${subject}` },
    });
    const encounter = (status) => ({ resourceType: 'Encounter', status, class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` } });

    const tx = await write(ctx.r4.alice, 'POST', '', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', id: pid, name: [{ family: 'Tx' }] }, request: { method: 'PUT', url: `Patient/${pid}` } },
        { resource: encounter('finished'), request: { method: 'POST', url: 'Encounter' } },
        { resource: observation(pid, '2339-0'), request: { method: 'POST', url: 'Observation' } },
        { resource: encounter('in-progress'), request: { method: 'POST', url: 'Encounter' } },
        { resource: observation(other, '2339-0'), request: { method: 'POST', url: 'Observation' } },
        { resource: observation(pid, '2345-7'), request: { method: 'POST', url: 'Observation' } },
      ],
    }, { status: 200 });
    assert.equal(tx.body.type, 'transaction-response');
    const results = tx.body.entry.map((e) => ({ status: e.response.status, resource: e.resource }));
    const statuses = results.map((r) => r.status.slice(0, 3));
    assert.match(statuses[0], /^20[01]$/, 'PUT Patient/<new id> creates');
    assert.deepEqual(statuses.slice(1), ['201', '201', '201', '201', '201'], JSON.stringify(tx.body.entry.map((e) => e.response)));
    const [patient, finished, obsA, , , obsB] = results.map((r) => r.resource);

    assertNotification(await ws.next(patSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: patSub.id, type: 'event-notification', content: 'id-only', since: 1, topic: TOPIC.patientChange,
      events: [ev(1, patient, { method: 'PUT', url: `Patient/${pid}`, status: results[0].status.slice(0, 3) })],
    });
    assertNotification(await ws.next(encSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: encSub.id, type: 'event-notification', content: 'full-resource', since: 1, topic: TOPIC.encounterComplete,
      events: [ev(1, finished, { method: 'POST', url: 'Encounter', status: 201, resource: { status: 'finished', subject: { reference: `Patient/${pid}` } } })],
    });
    const obsEvents = [
      ev(1, obsA, { method: 'POST', url: 'Observation', status: 201, resource: { code: obsA.code } }),
      ev(2, obsB, { method: 'POST', url: 'Observation', status: 201, resource: { code: obsB.code } }),
    ];
    for (const e of obsEvents) {
      assertNotification(await ws.next(obsSub.id), {
        shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'event-notification', content: 'full-resource', since: e.number, topic: TOPIC.observationChange, events: [e],
      });
      assertNotification(await ws5.next(obs5.id), {
        shape: 'r5', base: ctx.r5Url, subId: obs5.id, type: 'event-notification', content: 'id-only', since: e.number, topic: TOPIC.observationChange, events: [e],
      });
    }
    await ws.expectQuiet(500);

    // a batch whose middle entry fails: events for the two successful ones only (a create and
    // an update, the answered resources)
    const batch = await write(ctx.r4.alice, 'POST', '', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: observation(pid, '2951-2'), request: { method: 'POST', url: 'Observation' } },
        { resource: { ...observation(pid, '2951-2'), id: 'not-the-url-id' }, request: { method: 'PUT', url: `Observation/${uniq('x')}` } },
        { resource: { ...obsA, status: 'amended' }, request: { method: 'PUT', url: `Observation/${obsA.id}` } },
      ],
    }, { status: 200 });
    assert.equal(batch.body.type, 'batch-response');
    const bStatus = batch.body.entry.map((e) => e.response.status.slice(0, 3));
    assert.deepEqual([bStatus[0], bStatus[2]], ['201', '200'], JSON.stringify(batch.body.entry.map((e) => e.response)));
    assert.match(bStatus[1], /^4/, 'the backend refuses the entry whose id differs from its URL');
    const more = [
      ev(3, batch.body.entry[0].resource, { method: 'POST', url: 'Observation', status: 201, resource: { code: { coding: [{ system: LOINC, code: '2951-2' }] } } }),
      ev(4, obsA, { method: 'PUT', url: `Observation/${obsA.id}`, status: 200, resource: { status: 'amended', meta: batch.body.entry[2].resource.meta } }),
    ];
    for (const e of more) {
      assertNotification(await ws.next(obsSub.id), {
        shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'event-notification', content: 'full-resource', since: e.number, topic: TOPIC.observationChange, events: [e],
      });
    }

    // Bundles the backend refuses as a whole (4xx): no event at all
    for (const refused of [
      { resourceType: 'Bundle', type: 'collection', entry: [{ resource: observation(pid, '2951-2'), request: { method: 'POST', url: 'Observation' } }] },
      { resourceType: 'Patient', id: pid },
    ]) {
      await write(ctx.r4.alice, 'POST', '', refused, { status: (s) => s >= 400 && s < 500 });
    }
    await ws.expectQuiet(QUIET_MS);
    const all = await fetchEvents(ctx.r4.alice, obsSub.id);
    assertNotification(all, {
      shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'query-event', content: 'full-resource', since: 4, topic: TOPIC.observationChange, events: [...obsEvents, ...more],
    });
    await assertDbEvents(ctx.stack, patSub.id, 1);
    await assertDbEvents(ctx.stack, encSub.id, 1);
    await assertDbEvents(ctx.stack, obsSub.id, 4);
    await assertDbEvents(ctx.stack, obs5.id, 4);
    await ws.close();
    await ws5.close();
  });

  test('a transaction entry that finishes an Encounter (PUT in-progress → finished) fires encounter-end', async () => {
    const pid = uniq('txe');
    const sub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      const enc = await write(ctx.r4.alice, 'POST', 'Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` } }, { status: 201 });
      const tx = await write(ctx.r4.alice, 'POST', '', {
        resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { ...enc.body, status: 'finished' }, request: { method: 'PUT', url: `Encounter/${enc.body.id}` } }],
      }, { status: 200 });
      assert.equal(tx.body.entry[0].response.status.slice(0, 3), '200');
      assertNotification(await ws.next(sub.id, { timeoutMs: 5000 }), {
        shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: 1, topic: TOPIC.encounterComplete,
        events: [ev(1, enc.body, { method: 'PUT', url: `Encounter/${enc.body.id}`, status: 200 })],
      });
    } finally {
      await ws.close();
    }
  });

  test('a DELETE entry of a batch makes a delete event for a subscription whose filter the deleted resource met', async () => {
    const pid = uniq('txd');
    const sub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      const obs = await write(ctx.r4.alice, 'POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'to delete' }, subject: { reference: `Patient/${pid}` } }, { status: 201 });
      await ws.next(sub.id);
      const batch = await write(ctx.r4.alice, 'POST', '', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'DELETE', url: `Observation/${obs.body.id}` } }] }, { status: 200 });
      const status = batch.body.entry[0].response.status.slice(0, 3);
      assert.match(status, /^20[04]$/);
      assertNotification(await ws.next(sub.id, { timeoutMs: 5000 }), {
        shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: 2, topic: TOPIC.observationChange,
        events: [ev(2, obs.body, { method: 'DELETE', url: `Observation/${obs.body.id}`, status, deleted: true })],
      });
    } finally {
      await ws.close();
    }
  });

  test('a transaction that finishes Encounters (by id and by search) and deletes Observations (by id and by search): an event per entry, matched on the version before', async () => {
    const pid = uniq('txm');
    const ident = uniq('txmi');
    const encIdent = uniq('txme');
    const encSub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${pid}`], 'id-only');
    const obsSub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [encSub, obsSub]);
    try {
      const post = async (type, body) => (await write(ctx.r4.alice, 'POST', type, body, { status: 201 })).body;
      const encounter = () => ({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` } });
      const observation = (subject, extra = {}) => ({ resourceType: 'Observation', status: 'final', code: { text: 'tx' }, subject: { reference: `Patient/${subject}` }, ...extra });
      const [e1, e2, e3] = [await post('Encounter', encounter()), await post('Encounter', encounter()), await post('Encounter', encounter())];
      const e4 = await post('Encounter', { ...encounter(), identifier: [{ system: IDENT_SYSTEM, value: encIdent }] });
      const o1 = await post('Observation', observation(pid));
      const o2 = await post('Observation', observation(pid));
      const o3 = await post('Observation', observation(pid, { identifier: [{ system: IDENT_SYSTEM, value: ident }] }));
      const o4 = await post('Observation', observation(uniq('other')));
      for (let n = 1; n <= 3; n++) assert.deepEqual(eventNumbers(await ws.next(obsSub.id)), [n]);

      const tx = await write(ctx.r4.alice, 'POST', '', {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          { resource: { ...e1, status: 'finished' }, request: { method: 'PUT', url: `Encounter/${e1.id}` } },
          { request: { method: 'DELETE', url: `Observation/${o1.id}` } },
          { resource: { ...e2, status: 'finished' }, request: { method: 'PUT', url: `Encounter/${e2.id}` } },
          { resource: { ...e3, class: { code: 'IMP' } }, request: { method: 'PUT', url: `Encounter/${e3.id}` } }, // not finished: no event
          { request: { method: 'DELETE', url: `Observation?identifier=${IDENT_SYSTEM}|${ident}` } },
          { request: { method: 'DELETE', url: `Observation/${o2.id}` } },
          { request: { method: 'DELETE', url: `Observation/${o4.id}` } }, // another patient's: no event
          { resource: { ...e4, id: undefined, status: 'finished' }, request: { method: 'PUT', url: `Encounter?identifier=${IDENT_SYSTEM}|${encIdent}` } },
        ],
      }, { status: 200 });
      const statuses = tx.body.entry.map((e) => e.response.status.slice(0, 3));
      assert.deepEqual(statuses.map((st) => st[0]), ['2', '2', '2', '2', '2', '2', '2', '2'], JSON.stringify(tx.body.entry.map((e) => e.response)));
      assert.equal(tx.body.entry[7].resource?.id, e4.id, 'the conditional update resolved to e4');
      for (const o of [o1, o2, o3, o4]) assert.ok([404, 410].includes((await ctx.r4.alice.get(`Observation/${o.id}`)).status), `Observation/${o.id} is deleted`);

      const encEvents = [
        ev(1, e1, { method: 'PUT', url: `Encounter/${e1.id}`, status: statuses[0] }),
        ev(2, e2, { method: 'PUT', url: `Encounter/${e2.id}`, status: statuses[2] }),
        ev(3, e4, { method: 'PUT', url: `Encounter/${e4.id}`, status: statuses[7] }),
      ];
      const obsEvents = [
        ev(4, o1, { method: 'DELETE', url: `Observation/${o1.id}`, status: statuses[1], deleted: true }),
        ev(5, o3, { method: 'DELETE', url: `Observation/${o3.id}`, status: statuses[4], deleted: true }),
        ev(6, o2, { method: 'DELETE', url: `Observation/${o2.id}`, status: statuses[5], deleted: true }),
      ];
      for (const e of encEvents) {
        assertNotification(await ws.next(encSub.id), {
          shape: 'backport', base: ctx.r4Url, subId: encSub.id, type: 'event-notification', content: 'id-only', since: e.number, topic: TOPIC.encounterComplete, events: [e],
        });
      }
      for (const e of obsEvents) {
        assertNotification(await ws.next(obsSub.id), {
          shape: 'backport', base: ctx.r4Url, subId: obsSub.id, type: 'event-notification', content: 'id-only', since: e.number, topic: TOPIC.observationChange, events: [e],
        });
      }
      await ws.expectQuiet(500);
      await assertDbEvents(ctx.stack, encSub.id, 3);
      await assertDbEvents(ctx.stack, obsSub.id, 6);
    } finally {
      await ws.close();
    }
  });

  test('a batch deleting more Observations than are read one by one (the rest by _id search): an event for each, in entry order', async () => {
    const pid = uniq('many');
    const sub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      const count = 12; // above the 10 ids of a type read one by one
      const created = [];
      for (let i = 0; i < count; i++) {
        created.push((await write(ctx.r4.alice, 'POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: `n${i}` }, subject: { reference: `Patient/${pid}` } }, { status: 201 })).body);
      }
      for (let n = 1; n <= count; n++) assert.deepEqual(eventNumbers(await ws.next(sub.id)), [n]);
      const order = [...created].reverse(); // entry order differs from creation order
      const batch = await write(ctx.r4.alice, 'POST', '', { resourceType: 'Bundle', type: 'batch', entry: order.map((o) => ({ request: { method: 'DELETE', url: `Observation/${o.id}` } })) }, { status: 200 });
      const statuses = batch.body.entry.map((e) => e.response.status.slice(0, 3));
      for (const st of statuses) assert.match(st, /^20[04]$/);
      const expected = order.map((o, i) => ev(count + 1 + i, o, { method: 'DELETE', url: `Observation/${o.id}`, status: statuses[i], deleted: true }));
      for (const e of expected) {
        assertNotification(await ws.next(sub.id), {
          shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: e.number, topic: TOPIC.observationChange, events: [e],
        });
      }
      await ws.expectQuiet(500);
      await assertDbEvents(ctx.stack, sub.id, 2 * count);
    } finally {
      await ws.close();
    }
  });

  test('a Bundle reaches the FHIR server byte for byte (chunked, after 100 Continue) under and over FhirSubCaptureMaxBody; over it, no event (documented)', async () => {
    const pid = uniq('big');
    const sub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    const observation = (text) => ({ resourceType: 'Observation', status: 'final', code: { text: 'big' }, subject: { reference: `Patient/${pid}` }, note: [{ text }] });
    let number = 0;
    try {
      for (const [textSize, captured] of [[CAPTURE_MAX - 4096, true], [CAPTURE_MAX + 65536, false]]) {
        const victim = (await write(ctx.r4.alice, 'POST', 'Observation', observation('small'), { status: 201 })).body;
        assert.deepEqual(eventNumbers(await ws.next(sub.id)), [++number]);
        const text = crypto.randomBytes(textSize / 2).toString('hex');
        const bundle = JSON.stringify({
          resourceType: 'Bundle',
          type: 'batch',
          entry: [
            { resource: observation(text), request: { method: 'POST', url: 'Observation' } },
            { request: { method: 'DELETE', url: `Observation/${victim.id}` } },
          ],
        });
        assert.equal(Buffer.byteLength(bundle) <= CAPTURE_MAX, captured, `a Bundle of ${Buffer.byteLength(bundle)} bytes`);
        const res = await postChunked(ctx.r4Url, bundle);
        assert.equal(res.status, 200, res.text.slice(0, 400));
        assert.ok(res.continued, 'httpd sent 100 Continue before the body');
        const [created, deleted] = res.body.entry;
        assert.equal(created.response.status.slice(0, 3), '201');
        assert.match(deleted.response.status, /^20[04]/);
        const stored = await ctx.r4.alice.get(`Observation/${created.resource.id}`);
        assert.equal(stored.status, 200);
        assert.ok(stored.body.note[0].text === text, 'the FHIR server got the body unchanged');
        assert.ok([404, 410].includes((await ctx.r4.alice.get(`Observation/${victim.id}`)).status));
        if (captured) {
          for (const e of [
            ev(++number, created.resource, { method: 'POST', url: 'Observation', status: 201 }),
            ev(++number, victim, { method: 'DELETE', url: `Observation/${victim.id}`, status: deleted.response.status.slice(0, 3), deleted: true }),
          ]) {
            assertNotification(await ws.next(sub.id), {
              shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: e.number, topic: TOPIC.observationChange, events: [e],
            });
          }
        } else {
          await ws.expectQuiet(QUIET_MS);
        }
        await assertDbEvents(ctx.stack, sub.id, number);
      }
    } finally {
      await ws.close();
    }
  });
});

/** POSTs text to a base over node:http as alice: Expect: 100-continue, then chunked in 64 KiB pieces. */
function postChunked(baseUrl, text) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}/`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json', Authorization: basicAuthHeader('alice', USERS.alice), Expect: '100-continue' },
      timeout: 20_000,
    });
    let continued = false;
    req.on('continue', () => {
      continued = true;
      for (let i = 0; i < text.length; i += 65536) req.write(text.slice(i, i + 65536));
      req.end();
    });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let parsed = null;
        try {
          parsed = JSON.parse(body);
        } catch {
          // asserted by the caller through status and text
        }
        resolve({ status: res.statusCode, continued, body: parsed, text: body });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('POST with 100-continue timed out')));
    req.on('error', reject);
  });
}

// ---- failed writes ---------------------------------------------------------------------------

describe('failed writes make no event', () => {
  test('412 (stale If-Match), 400 (wrong type, id mismatch, not JSON), 404: nothing recorded, nothing sent; the next good write is the next number', async () => {
    const ident = uniq('fail');
    const pid = uniq('failp');
    const patSub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'full-resource');
    const encSub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${pid}`], 'id-only');
    const obsSub = await backportSub(TOPIC.observationChange, [`Observation?subject=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [patSub, encSub, obsSub]);

    const patient = await write(ctx.r4.alice, 'PUT', `Patient/${pid}`, patientBody(ident, { id: pid }), { status: (s) => s === 200 || s === 201 });
    assertNotification(await ws.next(patSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: patSub.id, type: 'event-notification', content: 'full-resource', since: 1, topic: TOPIC.patientChange,
      events: [ev(1, patient.body, { method: 'PUT', url: `Patient/${pid}`, status: patient.status, resource: patient.body })],
    });
    const enc = await write(ctx.r4.alice, 'POST', 'Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: `Patient/${pid}` } }, { status: 201 });
    const stale = 'W/"not-the-current-version"';

    const failures = [
      ['PUT', `Patient/${pid}`, { ...patient.body, gender: 'male' }, 412, { 'If-Match': stale }],
      ['DELETE', `Patient/${pid}`, undefined, 412, { 'If-Match': stale }],
      ['PUT', `Patient/${pid}`, { ...patient.body, id: uniq('other') }, 400],
      ['POST', 'Patient', { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${pid}` } }, 400],
      ['POST', 'Patient', '{"resourceType": "Patient", "identifier": [', 400],
      ['PUT', `Encounter/${enc.body.id}`, { ...enc.body, status: 'finished' }, 412, { 'If-Match': stale }],
      ['POST', 'Encounter', { resourceType: 'Patient', identifier: [{ system: IDENT_SYSTEM, value: ident }] }, 400],
      ['DELETE', `Observation/${uniq('missing')}`, undefined, 404],
      ['PUT', `Observation/${uniq('o')}`, { resourceType: 'Observation', id: uniq('mismatch'), status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${pid}` } }, 400],
    ];
    for (const [method, path, body, status, headers] of failures) {
      await write(ctx.r4.alice, method, path, body, { status, headers });
    }
    await ws.expectQuiet(QUIET_MS);
    assert.equal(await dbEventsSinceStart(ctx.stack, patSub.id), 1);
    assert.equal(await dbEventsSinceStart(ctx.stack, encSub.id), 0);
    assert.equal(await dbEventsSinceStart(ctx.stack, obsSub.id), 0);
    assert.equal(notificationCount(await fetchEvents(ctx.r4.alice, patSub.id)), 1);
    assert.equal(notificationCount(await fetchEvents(ctx.r4.alice, encSub.id)), 0);

    // the same writes, done right, are the next numbers: nothing was recorded in between
    const finished = await write(ctx.r4.alice, 'PUT', `Encounter/${enc.body.id}`, { ...enc.body, status: 'finished' }, { status: 200, headers: { 'If-Match': enc.headers.etag } });
    assertNotification(await ws.next(encSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: encSub.id, type: 'event-notification', content: 'id-only', since: 1, topic: TOPIC.encounterComplete,
      events: [ev(1, finished.body, { method: 'PUT', url: `Encounter/${enc.body.id}`, status: 200 })],
    });
    const male = await write(ctx.r4.alice, 'PUT', `Patient/${pid}`, { ...patient.body, gender: 'male' }, { status: 200, headers: { 'If-Match': patient.headers.etag } });
    assertNotification(await ws.next(patSub.id), {
      shape: 'backport', base: ctx.r4Url, subId: patSub.id, type: 'event-notification', content: 'full-resource', since: 2, topic: TOPIC.patientChange,
      events: [ev(2, male.body, { method: 'PUT', url: `Patient/${pid}`, status: 200, resource: { gender: 'male' } })],
    });
    await ws.expectQuiet(500);
    await assertDbEvents(ctx.stack, patSub.id, 2);
    await assertDbEvents(ctx.stack, encSub.id, 1);
    await assertDbEvents(ctx.stack, obsSub.id, 0);
    await ws.close();
  });

  test('a conditional delete matching two resources (412) and failed batch DELETE entries: nothing recorded, nothing deleted', async () => {
    const ident = uniq('two');
    const sub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      const a = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
      const b = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
      for (const n of [1, 2]) assert.deepEqual(eventNumbers(await ws.next(sub.id)), [n]);
      await write(ctx.r4.alice, 'DELETE', `Patient?identifier=${encodeURIComponent(`${IDENT_SYSTEM}|${ident}`)}`, undefined, { status: 412 });
      const batch = await write(ctx.r4.alice, 'POST', '', {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { request: { method: 'DELETE', url: `Patient/${uniq('missing')}` } },
          { request: { method: 'DELETE', url: `Patient?identifier=${IDENT_SYSTEM}|${ident}` } },
        ],
      }, { status: 200 });
      for (const e of batch.body.entry) assert.match(e.response.status, /^4/, JSON.stringify(batch.body.entry.map((x) => x.response)));
      await ws.expectQuiet(QUIET_MS);
      await assertDbEvents(ctx.stack, sub.id, 2);
      for (const p of [a, b]) assert.equal((await ctx.r4.alice.get(`Patient/${p.body.id}`)).status, 200);
    } finally {
      await ws.close();
    }
  });
});

function notificationCount(bundle) {
  const st = bundle.entry[0].resource;
  return st.resourceType === 'Parameters' ? st.parameter.filter((p) => p.name === 'notification-event').length : (st.notificationEvent ?? []).length;
}

// ---- conditional writes ------------------------------------------------------------------

describe('conditional writes', () => {
  test('conditional update: PUT Type?search creates (201) then updates (200), each an event naming the resolved id', async () => {
    const ident = uniq('cond');
    const sub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'full-resource');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    const search = `Patient?identifier=${encodeURIComponent(`${IDENT_SYSTEM}|${ident}`)}`;
    const first = await write(ctx.r4.alice, 'PUT', search, patientBody(ident, { name: [{ family: 'Cond' }] }), { status: 201 });
    assertNotification(await ws.next(sub.id), {
      shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'full-resource', since: 1, topic: TOPIC.patientChange,
      events: [ev(1, first.body, { method: 'PUT', url: `Patient/${first.body.id}`, status: 201, resource: { name: [{ family: 'Cond' }] } })],
    });
    const second = await write(ctx.r4.alice, 'PUT', search, patientBody(ident, { name: [{ family: 'Cond2' }] }), { status: 200 });
    assert.equal(second.body.id, first.body.id, 'the backend updated the one match');
    assertNotification(await ws.next(sub.id), {
      shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'full-resource', since: 2, topic: TOPIC.patientChange,
      events: [ev(2, second.body, { method: 'PUT', url: `Patient/${first.body.id}`, status: 200, resource: { name: [{ family: 'Cond2' }] } })],
    });
    await ws.expectQuiet(500);
    await assertDbEvents(ctx.stack, sub.id, 2);
    await ws.close();
  });

  test('a conditional create that matches an existing resource (200, nothing created) makes no event', async () => {
    const ident = uniq('ifnone');
    const sub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    const created = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201, headers: { 'If-None-Exist': `identifier=${IDENT_SYSTEM}|${ident}` } });
    assert.equal((await ws.next(sub.id)).entry.length, 2);
    const again = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 200, headers: { 'If-None-Exist': `identifier=${IDENT_SYSTEM}|${ident}` } });
    assert.equal(again.body.id, created.body.id, 'the backend created nothing');
    try {
      await ws.expectQuiet(QUIET_MS);
      assert.equal(await dbEventsSinceStart(ctx.stack, sub.id), 1);
    } finally {
      await ws.close();
    }
  });

  test('a conditional delete (DELETE Type?search) makes a delete event', async () => {
    const ident = uniq('cdel');
    const sub = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${ident}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    const created = await write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident), { status: 201 });
    await ws.next(sub.id);
    // one that finds nothing deletes nothing: no event (the next one is number 2)
    await write(ctx.r4.alice, 'DELETE', `Patient?identifier=${encodeURIComponent(`${IDENT_SYSTEM}|${uniq('nobody')}`)}`, undefined, { status: (s) => s === 200 || s === 204 });
    const del = await write(ctx.r4.alice, 'DELETE', `Patient?identifier=${encodeURIComponent(`${IDENT_SYSTEM}|${ident}`)}`, undefined, { status: (s) => s === 200 || s === 204 });
    const gone = await ctx.r4.alice.get(`Patient/${created.body.id}`);
    assert.ok([404, 410].includes(gone.status), `the Patient is deleted: ${gone.status}`);
    try {
      assertNotification(await ws.next(sub.id, { timeoutMs: 5000 }), {
        shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: 2, topic: TOPIC.patientChange,
        events: [ev(2, created.body, { method: 'DELETE', url: `Patient/${created.body.id}`, status: del.status, deleted: true })],
      });
      await ws.expectQuiet(500);
      await assertDbEvents(ctx.stack, sub.id, 2);
    } finally {
      await ws.close();
    }
  });

  test('conditional update of an Encounter (PUT Encounter?identifier=…) fires encounter-end on in-progress → finished only', async () => {
    const pid = uniq('cup');
    const ident = uniq('cupe');
    const sub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${pid}`], 'id-only');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    try {
      const encounter = (status) => ({ resourceType: 'Encounter', status, class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` }, identifier: [{ system: IDENT_SYSTEM, value: ident }] });
      const search = `Encounter?identifier=${encodeURIComponent(`${IDENT_SYSTEM}|${ident}`)}`;
      const created = await write(ctx.r4.alice, 'PUT', search, encounter('in-progress'), { status: 201 });
      await write(ctx.r4.alice, 'PUT', search, encounter('in-progress'), { status: 200 });
      const finished = await write(ctx.r4.alice, 'PUT', search, encounter('finished'), { status: 200 });
      assert.equal(finished.body.id, created.body.id, 'the backend updated the one match');
      assertNotification(await ws.next(sub.id), {
        shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'id-only', since: 1, topic: TOPIC.encounterComplete,
        events: [ev(1, finished.body, { method: 'PUT', url: `Encounter/${created.body.id}`, status: 200 })],
      });
      // finished → finished: the previous test fails, no event
      await write(ctx.r4.alice, 'PUT', search, encounter('finished'), { status: 200 });
      await ws.expectQuiet(QUIET_MS);
      await assertDbEvents(ctx.stack, sub.id, 1);
    } finally {
      await ws.close();
    }
  });
});

// ---- filters and topic criteria ----------------------------------------------------------------

describe('filters and topic criteria', () => {
  test('encounter-end with backport-filter-criteria Encounter?patient=Patient/X: only finishing Encounters of X (in-progress → finished, or created finished)', async () => {
    const x = uniq('x');
    const y = uniq('y');
    const sub = await backportSub(TOPIC.encounterComplete, [`Encounter?patient=Patient/${x}`], 'full-resource');
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    const encounter = (patient, status, extra = {}) => ({ resourceType: 'Encounter', status, class: { code: 'AMB' }, subject: { reference: `Patient/${patient}` }, ...extra });
    const post = (body) => write(ctx.r4.alice, 'POST', 'Encounter', body, { status: 201 });
    const put = (res, changes) => write(ctx.r4.alice, 'PUT', `Encounter/${res.id}`, { ...res, ...changes }, { status: 200 });
    const expectEvent = async (number, res, method) => {
      assertNotification(await ws.next(sub.id), {
        shape: 'backport', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'full-resource', since: number, topic: TOPIC.encounterComplete,
        events: [ev(number, res, { method, url: method === 'POST' ? 'Encounter' : `Encounter/${res.id}`, status: method === 'POST' ? 201 : 200, resource: { status: 'finished', subject: res.subject } })],
      });
    };

    // another patient's encounters never match, whatever they do
    const yEnc = (await post(encounter(y, 'in-progress'))).body;
    await put(yEnc, { status: 'finished' });
    await post(encounter(y, 'finished'));
    // X: created in progress: no event (current test fails)
    const a = (await post(encounter(x, 'in-progress'))).body;
    await ws.expectQuiet(QUIET_MS);
    // in-progress → finished: the one transition the topic is about
    const aDone = (await put(a, { status: 'finished' })).body;
    await expectEvent(1, aDone, 'PUT');
    // finished → finished (another change): the previous test fails
    await put(aDone, { period: { start: '2024-01-01T10:00:00Z', end: '2024-01-01T11:00:00Z' } });
    // finished → in-progress (reopened): the current test fails
    const reopened = (await write(ctx.r4.alice, 'GET', `Encounter/${a.id}`, undefined, { status: 200 })).body;
    await put(reopened, { status: 'in-progress' });
    // an update of another field while in progress
    const b = (await post(encounter(x, 'planned'))).body;
    await put(b, { status: 'in-progress' });
    // a delete of a finished encounter: not a supported interaction (and resultForDelete test-fails)
    const c = (await post(encounter(x, 'finished'))).body; // created finished: resultForCreate test-passes
    await expectEvent(2, c, 'POST');
    await write(ctx.r4.alice, 'DELETE', `Encounter/${c.id}`, undefined, { status: (s) => s === 200 || s === 204 });
    await ws.expectQuiet(QUIET_MS);
    // reopened one finishing again is an event again
    const again = (await write(ctx.r4.alice, 'GET', `Encounter/${a.id}`, undefined, { status: 200 })).body;
    assert.equal(again.status, 'in-progress');
    const againDone = (await put(again, { status: 'finished' })).body;
    await expectEvent(3, againDone, 'PUT');
    await ws.expectQuiet(500);
    await assertDbEvents(ctx.stack, sub.id, 3);
    await ws.close();
  });

  test('classic criteria Observation?code=http://loinc.org|1234-5: only Observations with that code (Medplum shape)', async () => {
    const sub = await createSub(ctx.r4.alice, classicBody({ criteria: `Observation?code=${LOINC}|${CLASSIC_CODE}` }));
    const ws = await subscribe(ctx, ctx.r4.alice, [sub]);
    assertNotification(ws.handshakes[sub.id], { shape: 'classic', base: ctx.r4Url, subId: sub.id, type: 'handshake', content: 'full-resource', since: 0 });
    const subject = { reference: `Patient/${uniq('cl')}` };
    const obs = (coding) => ({ resourceType: 'Observation', status: 'final', code: { coding }, subject });
    const post = (body) => write(ctx.r4.alice, 'POST', 'Observation', body, { status: 201 });
    let n = 0;
    const expectEvent = async (res, method, status) => {
      n += 1;
      assertNotification(await ws.next(sub.id), {
        shape: 'classic', base: ctx.r4Url, subId: sub.id, type: 'event-notification', content: 'full-resource', since: n,
        events: [ev(n, res, { method, url: method === 'POST' ? 'Observation' : `Observation/${res.id}`, status, resource: { code: res.code, subject } })],
      });
    };

    const match = (await post(obs([{ system: LOINC, code: CLASSIC_CODE }]))).body;
    await expectEvent(match, 'POST', 201);
    await post(obs([{ system: LOINC, code: '9999-9' }])); // another code
    await post(obs([{ system: 'http://snomed.info/sct', code: CLASSIC_CODE }])); // the code in another system
    await post(obs([{ code: CLASSIC_CODE }])); // no system: does not meet system|code
    await post(obs([{ system: LOINC, code: `${CLASSIC_CODE}0` }])); // a longer code
    await ws.expectQuiet(QUIET_MS);
    // one of several codings matching is a match
    const multi = (await post(obs([{ system: 'http://snomed.info/sct', code: '271649006' }, { system: LOINC, code: CLASSIC_CODE }]))).body;
    await expectEvent(multi, 'POST', 201);
    // an update that changes the code away: the current version does not match
    await write(ctx.r4.alice, 'PUT', `Observation/${match.id}`, { ...match, code: { coding: [{ system: LOINC, code: '9999-9' }] } }, { status: 200 });
    await ws.expectQuiet(QUIET_MS);
    // an update that changes it to the code: matches
    const other = (await post(obs([{ system: LOINC, code: '8867-4' }]))).body;
    const toMatch = (await write(ctx.r4.alice, 'PUT', `Observation/${other.id}`, { ...other, code: { coding: [{ system: LOINC, code: CLASSIC_CODE }] } }, { status: 200 })).body;
    await expectEvent(toMatch, 'PUT', 200);
    await ws.expectQuiet(500);
    await assertDbEvents(ctx.stack, sub.id, n);
    await ws.close();
  });
  test('subscriptions found through the index of their filter values (schema v2): keyed by identifier, re-keyed by an update, and an unindexable string filter beside them', async () => {
    const [a, b, family] = [uniq('key-a'), uniq('key-b'), uniq('Fam')];
    const keyed = await backportSub(TOPIC.patientChange, [`Patient?identifier=${IDENT_SYSTEM}|${a}`], 'id-only');
    const byName = await backportSub(TOPIC.patientChange, [`Patient?family=${family}`], 'id-only');
    const keysOf = async (id) => (await ctx.stack.query(`SELECT key FROM fhirsub_sub_key WHERE subscription_id = '${id}'`)).map((r) => r[0]);
    const keyedFlag = async (id) => Number((await ctx.stack.query(`SELECT keyed FROM fhirsub_subscription WHERE id = '${id}'`))[0][0]);
    assert.deepEqual(await keysOf(keyed.id), [`Patient.identifier=${a}`]);
    assert.equal(await keyedFlag(keyed.id), 1);
    assert.deepEqual(await keysOf(byName.id), []);
    assert.equal(await keyedFlag(byName.id), 0, 'a string filter has no keys: a candidate for every Patient write');
    const post = (ident, extra) => write(ctx.r4.alice, 'POST', 'Patient', patientBody(ident, extra), { status: 201 });

    await post(a);
    await waitForDbEvents(ctx.stack, keyed.id, 1);
    await post(b, { name: [{ family }] });
    await waitForDbEvents(ctx.stack, byName.id, 1);
    // the update moves the subscription to identifier b: found by b, no longer by a
    const moved = backportBody({ topic: TOPIC.patientChange, filters: [`Patient?identifier=${IDENT_SYSTEM}|${b}`], content: 'id-only', heartbeat: null, maxCount: null });
    const put = await ctx.r4.alice.request('PUT', `Subscription/${keyed.id}`, { ...moved, id: keyed.id });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(await keysOf(keyed.id), [`Patient.identifier=${b}`]);
    await post(a);
    await post(b);
    await waitForDbEvents(ctx.stack, keyed.id, 2);
    await sleep(QUIET_MS);
    await assertDbEvents(ctx.stack, keyed.id, 2);
    await assertDbEvents(ctx.stack, byName.id, 1);
    // deleting the subscription takes its keys
    const del = await ctx.r4.alice.request('DELETE', `Subscription/${keyed.id}`);
    assert.ok(del.status === 200 || del.status === 204, del.text);
    assert.deepEqual(await keysOf(keyed.id), []);
  });
});

// ---- Medplum's client ------------------------------------------------------------------------

// @medplum/core reads the global WebSocket when it is imported and when it runs (Node 20 has
// none without a flag): the `ws` package stands in, as Medplum documents for Node. Set only once
// the stack runs: lib/backend.mjs decides on --experimental-websocket by its absence.
async function importMedplum() {
  if (typeof globalThis.WebSocket === 'undefined') globalThis.WebSocket = WebSocket;
  return import('@medplum/core');
}

describe("Medplum's client (@medplum/core) with a real write", () => {
  test('subscribeToCriteria → handshake → one Encounter written through httpd → exactly one message carrying it', async () => {
    const { MedplumClient } = await importMedplum();
    medplum = new MedplumClient({ baseUrl: `${ctx.stack.httpd.baseUrl}/`, fetch: globalThis.fetch.bind(globalThis) });
    medplum.setBasicAuth('alice', USERS.alice);
    // a Medplum server would give the profile at login; there is none here
    medplum.getProfile = () => ({ resourceType: 'Practitioner', id: 'alice' });
    const pid = uniq('mp');
    const emitter = medplum.subscribeToCriteria(`Encounter?subject=Patient/${pid}`);
    const seen = [];
    for (const type of ['connect', 'message', 'error', 'disconnect']) emitter.addEventListener(type, (e) => seen.push(e));
    const connect = await waitFor(() => seen.find((e) => e.type === 'connect'), { what: "Medplum's connect event (the handshake)", timeoutMs: 20_000 });
    const subscriptionId = connect.payload.subscriptionId;
    assert.ok(subscriptionId);

    const written = await write(ctx.r4.alice, 'POST', 'Encounter', {
      resourceType: 'Encounter', status: 'arrived', class: { code: 'EMER' }, subject: { reference: `Patient/${pid}` }, reasonCode: [{ text: 'medplum' }],
    }, { status: 201 });
    // an Encounter of another patient does not reach it
    await write(ctx.r4.alice, 'POST', 'Encounter', { resourceType: 'Encounter', status: 'arrived', class: { code: 'EMER' }, subject: { reference: `Patient/${uniq('mp')}` } }, { status: 201 });
    const message = await waitFor(() => seen.find((e) => e.type === 'message'), { what: "Medplum's message event", timeoutMs: 15_000 });
    const bundle = message.payload;
    assertNotification(bundle, {
      shape: 'classic', base: ctx.r4Url, subId: subscriptionId, type: 'event-notification', content: 'full-resource', since: 1,
      events: [ev(1, written.body, { method: 'POST', url: 'Encounter', status: 201, resource: written.body })],
    });
    assert.deepEqual(bundle.entry[1].resource, written.body, 'the resource as the backend stored it');
    await sleep(QUIET_MS);
    assert.equal(seen.filter((e) => e.type === 'message').length, 1, 'exactly one message');
    assert.deepEqual(seen.filter((e) => e.type === 'error'), []);
    await assertDbEvents(ctx.stack, subscriptionId, 1);
    medplum.unsubscribeFromCriteria(`Encounter?subject=Patient/${pid}`);
  });
});

test('every recorded event has its change row', async () => {
  const rows = await ctx.stack.query('SELECT COUNT(*) FROM fhirsub_event e LEFT JOIN fhirsub_change c ON c.id = e.change_id WHERE c.id IS NULL');
  assert.equal(Number(rows[0][0]), 0, 'every event has its change row');
});
