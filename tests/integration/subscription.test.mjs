// The Subscription resource through httpd + mod_fhirsub: create, read, vread, update, delete
// and search in the three shapes (R4 backport, R4 classic, R5), and what creation refuses.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack } from './lib/stack.mjs';
import {
  TOPIC,
  URL,
  assertOutcome,
  backportBody,
  bundleIds,
  classicBody,
  clientsFor,
  countRows,
  createSub,
  fhirsubDirectives,
  instantIn,
  issueText,
  makeKeyDir,
  r5Body,
  sqlString,
  stopAndCheckLog,
  subRow,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';

const R5_PATH = '/fhir/R5';
const IDONLY_PATH = '/idonly/R4';
const NOWS_PATH = '/nows/R4';
const WS_URL = wsUrlFor(9, 'subscriptions-r4');
const WS_URL_R5 = wsUrlFor(9, 'subscriptions-r5');
const CLASSIC = 'Observation?code=http://loinc.org|1234-5';

let stack;
let key;
let r4; // clients at the R4 base (through the backend location)
let r5;
let idOnly;
let noWs;

before(async () => {
  key = makeKeyDir();
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile }), proxyTo: backend.url },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL_R5, keyFile: key.keyFile, version: 'R5' }) },
      {
        path: IDONLY_PATH,
        directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, extra: ['FhirSubPayloadContent id-only'] }),
      },
      { path: NOWS_PATH, directives: fhirsubDirectives({ wsUrl: null, keyFile: null }) },
    ],
  });
  r4 = clientsFor(stack.fhirUrl);
  r5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`);
  idOnly = clientsFor(`${stack.httpd.baseUrl}${IDONLY_PATH}`);
  noWs = clientsFor(`${stack.httpd.baseUrl}${NOWS_PATH}`);
});

after(async () => {
  try {
    await stopAndCheckLog(stack);
  } finally {
    key?.cleanup();
  }
});

// FHIR JSON has no empty arrays: an empty searchset has no `entry` at all.
function assertEntries(bundle) {
  if (bundle.total === 0) assert.equal(bundle.entry, undefined, 'no empty entry array');
  else assert.equal(bundle.entry.length, bundle.total);
}

function ext(obj, url) {
  return (obj?.extension ?? []).find((e) => e.url === url);
}

// Last-Modified carries whole seconds of meta.lastUpdated.
function assertLastModified(res) {
  const lastUpdated = Date.parse(res.body.meta.lastUpdated);
  assert.ok(res.headers['last-modified'], 'Last-Modified header');
  assert.equal(Date.parse(res.headers['last-modified']), Math.floor(lastUpdated / 1000) * 1000);
}

describe('R4 backport Subscription: create, read, vread, update, delete', () => {
  let created;
  let createRes;
  const filter = 'Encounter?patient=Patient/123';

  test('create answers 201 with Location, ETag, Last-Modified and the stored resource', async () => {
    const before = Date.now();
    createRes = await r4.alice.post('Subscription', backportBody({ filters: [filter], heartbeat: 60, maxCount: 20 }));
    assert.equal(createRes.status, 201, createRes.text);
    assert.match(createRes.headers['content-type'], /^application\/fhir\+json/);
    created = createRes.body;
    assert.equal(created.resourceType, 'Subscription');
    assert.match(created.id, /^[A-Za-z0-9\-.]{1,64}$/);
    assert.equal(createRes.headers.location, `${stack.fhirUrl}/Subscription/${created.id}/_history/1`);
    assert.equal(createRes.headers.etag, 'W/"1"');
    assertLastModified(createRes);
    // requested becomes active at once: a websocket subscription needs no handshake at creation
    assert.equal(created.status, 'active');
    assert.equal(created.meta.versionId, '1');
    assert.deepEqual(created.meta.profile, [URL.backportSubscription]);
    const lastUpdated = Date.parse(created.meta.lastUpdated);
    assert.ok(lastUpdated >= before - 2000 && lastUpdated <= Date.now() + 2000, created.meta.lastUpdated);
    assert.equal(created.criteria, TOPIC.encounterComplete);
    assert.equal(ext(created._criteria, URL.filterCriteria)?.valueString, filter);
    assert.equal(created.channel.type, 'websocket');
    assert.equal(created.channel.payload, 'application/fhir+json');
    assert.equal(ext(created.channel._payload, URL.payloadContent)?.valueCode, 'id-only');
    assert.equal(ext(created.channel, URL.heartbeatPeriod)?.valueUnsignedInt, 60);
    assert.equal(ext(created.channel, URL.maxCount)?.valuePositiveInt, 20);
  });

  test('the database row holds the parsed definition and the owner', async () => {
    const row = await subRow(stack, created.id);
    assert.ok(row, 'row exists');
    assert.equal(row.owner, 'alice');
    assert.equal(row.status, 'active');
    assert.equal(row.channel_type, 'websocket');
    assert.equal(row.shape, '1');
    assert.equal(row.topic, TOPIC.encounterComplete);
    assert.equal(row.content, 'id-only');
    assert.equal(row.content_type, 'application/fhir+json');
    assert.equal(row.heartbeat_period, '60');
    assert.equal(row.max_count, '20');
    assert.equal(row.version_id, '1');
    assert.equal(row.base_url, stack.fhirUrl);
    assert.equal(row.events_since_start, '0');
    const filters = JSON.parse(row.filters);
    assert.equal(filters.length, 1);
    assert.match(JSON.stringify(filters[0]), /patient/);
    assert.match(JSON.stringify(filters[0]), /Patient\/123/);
  });

  test('read returns the same resource with ETag and Last-Modified', async () => {
    const res = await r4.alice.get(`Subscription/${created.id}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, created);
    assert.equal(res.headers.etag, 'W/"1"');
    assertLastModified(res);
  });

  test('vread of the current version answers it; other versions are 404', async () => {
    const res = await r4.alice.get(`Subscription/${created.id}/_history/1`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.body, created);
    assert.equal(res.headers.etag, 'W/"1"');
    assertOutcome(await r4.alice.get(`Subscription/${created.id}/_history/2`), 404, 'not-found');
    assertOutcome(await r4.alice.get(`Subscription/${created.id}/_history/0`), 404, 'not-found');
  });

  test('update (PUT) makes version 2; the client may switch the subscription off', async () => {
    const body = { ...created, status: 'off', reason: 'switched off' };
    const res = await r4.alice.put(`Subscription/${created.id}`, body);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.etag, 'W/"2"');
    assertLastModified(res);
    assert.equal(res.body.id, created.id);
    assert.equal(res.body.status, 'off');
    assert.equal(res.body.reason, 'switched off');
    assert.equal(res.body.meta.versionId, '2');
    const read = await r4.alice.get(`Subscription/${created.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, 'off');
    assert.equal(read.headers.etag, 'W/"2"');
    const row = await subRow(stack, created.id);
    assert.equal(row.status, 'off');
    assert.equal(row.version_id, '2');
    assert.equal(row.owner, 'alice');
    // only the current version is kept
    assertOutcome(await r4.alice.get(`Subscription/${created.id}/_history/1`), 404, 'not-found');
    assert.equal((await r4.alice.get(`Subscription/${created.id}/_history/2`)).status, 200);
  });

  test('If-Match: a stale version answers 412, the current one is honoured', async () => {
    const stale = await r4.alice.put(`Subscription/${created.id}`, { ...created, status: 'active' }, { 'If-Match': 'W/"1"' });
    assertOutcome(stale, 412);
    assert.equal((await subRow(stack, created.id)).version_id, '2', 'a refused update changes nothing');
    const current = await r4.alice.put(`Subscription/${created.id}`, { ...created, status: 'active' }, { 'If-Match': 'W/"2"' });
    assert.equal(current.status, 200, current.text);
    assert.equal(current.body.status, 'active');
    assert.equal(current.headers.etag, 'W/"3"');
  });

  test('PUT with an id other than the URL\'s, or none, answers 400 and changes nothing', async () => {
    const mismatch = await r4.alice.put(`Subscription/${created.id}`, { ...created, id: 'some-other-id' });
    assertOutcome(mismatch, 400, 'invalid');
    const { id: _omit, ...noId } = created;
    assertOutcome(await r4.alice.put(`Subscription/${created.id}`, noId), 400, 'invalid');
    assert.equal((await subRow(stack, created.id)).version_id, '3');
  });

  test('PUT of an unknown id answers 404 (no create on update)', async () => {
    const res = await r4.alice.put('Subscription/no-such-subscription', { ...created, id: 'no-such-subscription' });
    assertOutcome(res, 404, 'not-found');
    assert.equal(await subRow(stack, 'no-such-subscription'), null);
  });

  test('DELETE honours If-Match too', {
  }, async () => {
    const other = await createSub(r4.alice, backportBody());
    const stale = await r4.alice.del(`Subscription/${other.id}`, { 'If-Match': 'W/"7"' });
    assert.ok(await subRow(stack, other.id), 'a DELETE with a stale If-Match must not delete');
    assertOutcome(stale, 412);
    const current = await r4.alice.del(`Subscription/${other.id}`, { 'If-Match': 'W/"1"' });
    assert.equal(current.status, 204);
  });

  test('delete answers 204; the subscription is gone', async () => {
    const res = await r4.alice.del(`Subscription/${created.id}`);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.text, '');
    assertOutcome(await r4.alice.get(`Subscription/${created.id}`), 404, 'not-found');
    assertOutcome(await r4.alice.get(`Subscription/${created.id}/_history/3`), 404, 'not-found');
    assertOutcome(await r4.alice.del(`Subscription/${created.id}`), 404, 'not-found');
    assert.equal(await subRow(stack, created.id), null);
  });
});

describe('R4 classic Subscription (criteria is a search)', () => {
  test('create 201: criteria kept, no backport profile, full-resource by default', async () => {
    const res = await r4.alice.post('Subscription', classicBody({ criteria: CLASSIC }));
    assert.equal(res.status, 201, res.text);
    const sub = res.body;
    assert.equal(res.headers.location, `${stack.fhirUrl}/Subscription/${sub.id}/_history/1`);
    assert.equal(res.headers.etag, 'W/"1"');
    assert.equal(sub.status, 'active');
    assert.equal(sub.criteria, CLASSIC);
    assert.equal(sub.channel.type, 'websocket');
    assert.equal(sub.meta.versionId, '1');
    assert.equal(sub.meta.profile, undefined);
    const row = await subRow(stack, sub.id);
    assert.equal(row.shape, '2');
    assert.equal(row.criteria, CLASSIC);
    assert.equal(row.topic, '');
    assert.equal(row.content, 'full-resource');
    const read = await r4.alice.get(`Subscription/${sub.id}`);
    assert.deepEqual(read.body, sub);
  });

  test('a bare resource type is accepted as criteria', async () => {
    const sub = await createSub(r4.alice, classicBody({ criteria: 'Observation' }));
    assert.equal(sub.criteria, 'Observation');
  });

  test('criteria with an unsupported search parameter answers 422', async () => {
    const issue = assertOutcome(await r4.alice.post('Subscription', classicBody({ criteria: 'Observation?foo=bar' })), 422, 'not-supported');
    assert.match(issueText(issue), /foo/);
  });

  test('criteria that is neither a canonical nor a search answers 400', async () => {
    assertOutcome(await r4.alice.post('Subscription', classicBody({ criteria: 'not a search' })), 400);
  });
});

describe('R5 Subscription at the R5 base', () => {
  let sub;

  test('create 201 with Location at the R5 base and the R5 elements', async () => {
    const res = await r5.alice.post('Subscription', r5Body({ heartbeatPeriod: 30, maxCount: 10 }));
    assert.equal(res.status, 201, res.text);
    sub = res.body;
    assert.equal(res.headers.location, `${stack.httpd.baseUrl}${R5_PATH}/Subscription/${sub.id}/_history/1`);
    assert.equal(res.headers.etag, 'W/"1"');
    assertLastModified(res);
    assert.equal(sub.status, 'active');
    assert.equal(sub.topic, TOPIC.encounterComplete);
    assert.deepEqual(sub.channelType, { system: URL.channelTypeCs, code: 'websocket' });
    assert.equal(sub.content, 'id-only');
    assert.equal(sub.contentType, 'application/fhir+json');
    assert.equal(sub.heartbeatPeriod, 30);
    assert.equal(sub.maxCount, 10);
    assert.deepEqual(sub.filterBy, [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }]);
    assert.equal(sub.meta.versionId, '1');
    assert.equal(sub.meta.profile, undefined, 'no backport profile on an R5 resource');
    assert.equal(sub.criteria, undefined);
    assert.equal(sub.channel, undefined);
    const row = await subRow(stack, sub.id);
    assert.equal(row.shape, '3');
    assert.equal(row.owner, 'alice');
    assert.equal(row.topic, TOPIC.encounterComplete);
    assert.equal(row.content, 'id-only');
    assert.equal(row.heartbeat_period, '30');
    assert.equal(row.max_count, '10');
    assert.equal(row.base_url, `${stack.httpd.baseUrl}${R5_PATH}`);
  });

  test('read, vread and update at the R5 base', async () => {
    const read = await r5.alice.get(`Subscription/${sub.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, sub);
    assert.equal((await r5.alice.get(`Subscription/${sub.id}/_history/1`)).status, 200);
    const put = await r5.alice.put(`Subscription/${sub.id}`, { ...sub, content: 'empty' });
    assert.equal(put.status, 200, put.text);
    assert.equal(put.body.content, 'empty');
    assert.equal(put.headers.etag, 'W/"2"');
    assert.equal((await subRow(stack, sub.id)).content, 'empty');
  });

  test('content defaults to id-only; full-resource may be asked for', async () => {
    const dflt = await createSub(r5.alice, r5Body({ content: null }));
    assert.equal((await subRow(stack, dflt.id)).content, 'id-only');
    const full = await createSub(r5.alice, r5Body({ content: 'full-resource' }));
    assert.equal((await subRow(stack, full.id)).content, 'full-resource');
  });

  test('R5 refusals: channel, system, filters, content type, R4 elements', async () => {
    assertOutcome(await r5.alice.post('Subscription', r5Body({ code: 'rest-hook' })), 422, 'not-supported');
    assertOutcome(await r5.alice.post('Subscription', r5Body({ code: 'carrier-pigeon' })), 400, 'code-invalid');
    assertOutcome(await r5.alice.post('Subscription', r5Body({ system: 'http://example.org/channels' })), 422, 'not-supported');
    assertOutcome(await r5.alice.post('Subscription', r5Body({ topic: 'http://example.org/no-such-topic' })), 422, 'not-found');
    const notOffered = r5Body({ filterBy: [{ resourceType: 'Encounter', filterParameter: 'status', value: 'finished' }] });
    assertOutcome(await r5.alice.post('Subscription', notOffered), 422, 'not-supported');
    const unsupported = r5Body({ filterBy: [{ resourceType: 'Encounter', filterParameter: 'length', value: '5' }] });
    assertOutcome(await r5.alice.post('Subscription', unsupported), 422, 'not-supported');
    assertOutcome(await r5.alice.post('Subscription', r5Body({ contentType: 'application/fhir+xml' })), 422, 'not-supported');
    const r4Elements = { ...r5Body(), criteria: TOPIC.encounterComplete, channel: { type: 'websocket' } };
    const issue = assertOutcome(await r5.alice.post('Subscription', r4Elements), 400, 'structure');
    assert.match(issueText(issue), /R5 endpoint/);
    const { topic: _t, ...noTopic } = r5Body();
    assertOutcome(await r5.alice.post('Subscription', noTopic), 400, 'required');
  });
});

describe('search', () => {
  // carol's subscriptions only: exact result sets
  const c = () => r4.carol;
  let encounter;
  let patient;
  let classic;

  before(async () => {
    encounter = await createSub(c(), backportBody({ topic: TOPIC.encounterComplete }));
    patient = await createSub(c(), backportBody({ topic: TOPIC.patientChange, filters: ['Patient?gender=female'], status: 'off' }));
    classic = await createSub(c(), classicBody({ criteria: CLASSIC }));
  });

  async function searchIds(query) {
    const res = await c().get(`Subscription${query}`);
    assert.equal(res.status, 200, `${query}: ${res.text}`);
    assert.equal(res.body.resourceType, 'Bundle');
    assert.equal(res.body.type, 'searchset');
    assertEntries(res.body);
    return bundleIds(res.body);
  }

  const sorted = (...subs) => subs.map((s) => s.id).sort();

  test('all of the caller\'s subscriptions: searchset with fullUrl and search.mode match', async () => {
    const res = await c().get('Subscription');
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 3);
    assert.deepEqual(bundleIds(res.body), sorted(encounter, patient, classic));
    for (const entry of res.body.entry) {
      assert.equal(entry.fullUrl, `${stack.fhirUrl}/Subscription/${entry.resource.id}`);
      assert.deepEqual(entry.search, { mode: 'match' });
      assert.equal(entry.resource.resourceType, 'Subscription');
      assert.ok(entry.resource.meta.versionId);
    }
  });

  test('_id, one or several (OR)', async () => {
    assert.deepEqual(await searchIds(`?_id=${encounter.id}`), [encounter.id]);
    assert.deepEqual(await searchIds(`?_id=${encounter.id},${classic.id}`), sorted(encounter, classic));
    assert.deepEqual(await searchIds('?_id=unknown-id'), []);
  });

  test('status', async () => {
    assert.deepEqual(await searchIds('?status=active'), sorted(encounter, classic));
    assert.deepEqual(await searchIds('?status=off'), [patient.id]);
    assert.deepEqual(await searchIds('?status=off,active'), sorted(encounter, patient, classic));
    assert.deepEqual(await searchIds('?status=error'), []);
  });

  test('type', async () => {
    assert.deepEqual(await searchIds('?type=websocket'), sorted(encounter, patient, classic));
    assert.deepEqual(await searchIds('?type=rest-hook'), []);
  });

  test('url: the topic canonical, or the classic criteria', async () => {
    assert.deepEqual(await searchIds(`?url=${encodeURIComponent(TOPIC.encounterComplete)}`), [encounter.id]);
    assert.deepEqual(await searchIds(`?url=${encodeURIComponent(CLASSIC)}`), [classic.id]);
    assert.deepEqual(await searchIds(`?topic=${encodeURIComponent(TOPIC.patientChange)}`), [patient.id]);
  });

  test('criteria (taken whole, commas included)', async () => {
    assert.deepEqual(await searchIds(`?criteria=${encodeURIComponent(CLASSIC)}`), [classic.id]);
    assert.deepEqual(await searchIds(`?criteria=${encodeURIComponent('Observation?code=other')}`), []);
  });

  test('parameters are ANDed', async () => {
    assert.deepEqual(await searchIds(`?status=active&url=${encodeURIComponent(TOPIC.encounterComplete)}`), [encounter.id]);
    assert.deepEqual(await searchIds(`?status=off&url=${encodeURIComponent(TOPIC.encounterComplete)}`), []);
  });

  test('POST _search with a form body', async () => {
    const form = (body) => c().request('POST', 'Subscription/_search', body, { 'Content-Type': 'application/x-www-form-urlencoded' });
    let res = await form('status=off');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.type, 'searchset');
    assert.deepEqual(bundleIds(res.body), [patient.id]);
    res = await form(`criteria=${encodeURIComponent(CLASSIC)}`);
    assert.deepEqual(bundleIds(res.body), [classic.id]);
    res = await form(`_id=${encounter.id}&status=active`);
    assert.deepEqual(bundleIds(res.body), [encounter.id]);
    // a POST _search is no create
    assert.equal(await countRows(stack, 'fhirsub_subscription', `owner = ${sqlString('carol')}`), 3);
  });

  test('an unknown search parameter answers 400 OperationOutcome', async () => {
    const issue = assertOutcome(await c().get('Subscription?foo=bar'), 400);
    assert.match(issueText(issue), /foo/);
    assertOutcome(await c().get('Subscription?_sort=status'), 400);
    const form = await c().request('POST', 'Subscription/_search', 'bogus=1', { 'Content-Type': 'application/x-www-form-urlencoded' });
    assertOutcome(form, 400);
  });
});

describe('what creation refuses', () => {
  // dave's subscriptions: every refusal must leave his count unchanged
  const d = () => r4.dave;
  const daveRows = () => countRows(stack, 'fhirsub_subscription', `owner = ${sqlString('dave')}`);
  let rowsBefore;

  before(async () => {
    rowsBefore = await daveRows();
  });

  test('an unknown channel type answers 400, a known one we do not serve 422', async () => {
    const unknown = assertOutcome(await d().post('Subscription', backportBody({ channelType: 'carrier-pigeon' })), 400, 'code-invalid');
    assert.match(issueText(unknown), /carrier-pigeon/);
    const restHook = assertOutcome(await d().post('Subscription', backportBody({ channelType: 'rest-hook' })), 422, 'not-supported');
    assert.match(issueText(restHook), /rest-hook/);
    assertOutcome(await d().post('Subscription', backportBody({ channelType: 'email' })), 422, 'not-supported');
    const custom = backportBody();
    custom.channel.extension.push({ url: URL.channelTypeExt, valueCoding: { system: 'http://example.org', code: 'x' } });
    assertOutcome(await d().post('Subscription', custom), 422, 'not-supported');
  });

  test('an unknown topic answers 422', async () => {
    const issue = assertOutcome(await d().post('Subscription', backportBody({ topic: 'http://example.org/fhir/SubscriptionTopic/nope' })), 422, 'not-found');
    assert.match(issueText(issue), /nope/);
  });

  test('a filter on an unsupported search parameter answers 422', async () => {
    const issue = assertOutcome(await d().post('Subscription', backportBody({ filters: ['Encounter?length=5'] })), 422, 'not-supported');
    assert.match(issueText(issue), /length/);
  });

  test('a filter the topic does not offer (canFilterBy) answers 422', async () => {
    // status is a supported Encounter parameter, but r4-encounter-complete does not offer it
    const issue = assertOutcome(await d().post('Subscription', backportBody({ filters: ['Encounter?status=finished'] })), 422, 'not-supported');
    assert.match(issueText(issue), /status/);
  });

  test('an XML payload answers 422', async () => {
    const issue = assertOutcome(await d().post('Subscription', backportBody({ payload: 'application/fhir+xml' })), 422, 'not-supported');
    assert.match(issueText(issue), /xml/);
  });

  test('a status only the server may set answers 422', async () => {
    assertOutcome(await d().post('Subscription', backportBody({ status: 'error' })), 422, 'business-rule');
    assertOutcome(await d().post('Subscription', backportBody({ status: 'bogus' })), 400);
  });

  test('heartbeat period and max count outside their ranges answer 422', async () => {
    assertOutcome(await d().post('Subscription', backportBody({ heartbeat: 0 })), 422, 'business-rule');
    assertOutcome(await d().post('Subscription', backportBody({ heartbeat: 3601 })), 422, 'business-rule');
    assertOutcome(await d().post('Subscription', backportBody({ maxCount: 1001 })), 422, 'business-rule');
  });

  test('missing criteria or channel answer 400 required', async () => {
    const { criteria: _c, ...noCriteria } = backportBody();
    assertOutcome(await d().post('Subscription', noCriteria), 400, 'required');
    const { channel: _ch, ...noChannel } = backportBody();
    assertOutcome(await d().post('Subscription', noChannel), 400, 'required');
  });

  test('R5 elements at the R4 base answer 400', async () => {
    const issue = assertOutcome(await d().post('Subscription', { ...backportBody(), topic: TOPIC.encounterComplete }), 400, 'structure');
    assert.match(issueText(issue), /R4 endpoint/);
    assertOutcome(await d().post('Subscription', { ...backportBody(), channelType: { code: 'websocket' } }), 400, 'structure');
  });

  test('`end` in the past answers 422', async () => {
    const issue = assertOutcome(await d().post('Subscription', backportBody({ end: '2001-01-01T00:00:00Z' })), 422, 'business-rule');
    assert.match(issueText(issue), /past/);
    assertOutcome(await d().post('Subscription', backportBody({ end: 'tomorrow' })), 400, 'invalid');
  });

  test('nothing was stored by the refused requests', async () => {
    assert.equal(await daveRows(), rowsBefore);
  });

  test('`end` in the future is accepted and kept', async () => {
    const end = instantIn(3600);
    const sub = await createSub(d(), backportBody({ end }));
    assert.equal(sub.end, end);
    assert.equal(sub.status, 'active');
    assert.equal((await subRow(stack, sub.id)).end_ms, String(Date.parse(end)));
  });
});

describe('a location with FhirSubPayloadContent id-only', () => {
  test('full-resource and empty are refused with 422, id-only is accepted', async () => {
    const full = assertOutcome(await idOnly.alice.post('Subscription', backportBody({ content: 'full-resource' })), 422, 'forbidden');
    assert.match(issueText(full), /full-resource/);
    assertOutcome(await idOnly.alice.post('Subscription', backportBody({ content: 'empty' })), 422, 'forbidden');
    const res = await idOnly.alice.post('Subscription', backportBody({ content: 'id-only' }));
    assert.equal(res.status, 201, res.text);
    assert.equal(res.headers.location, `${stack.httpd.baseUrl}${IDONLY_PATH}/Subscription/${res.body.id}/_history/1`);
  });

  test('a classic subscription gets the richest level allowed there (id-only)', async () => {
    const sub = await createSub(idOnly.alice, classicBody());
    assert.equal((await subRow(stack, sub.id)).content, 'id-only');
  });

  test('an unknown content code answers 400', async () => {
    assertOutcome(await idOnly.alice.post('Subscription', backportBody({ content: 'everything' })), 400, 'code-invalid');
  });
});

describe('a location without FhirSubWebSocketURL', () => {
  test('creation answers 422: websocket subscriptions are not enabled there', async () => {
    const before = await countRows(stack, 'fhirsub_subscription');
    const issue = assertOutcome(await noWs.alice.post('Subscription', backportBody()), 422, 'not-supported');
    assert.match(issueText(issue), /WebSocket subscriptions not enabled/);
    assert.equal(await countRows(stack, 'fhirsub_subscription'), before);
  });

  test('$get-ws-binding-token answers 400 invalid, as Medplum documents', async () => {
    const issue = assertOutcome(await noWs.alice.get('Subscription/$get-ws-binding-token'), 400, 'invalid');
    assert.match(issueText(issue), /WebSocket subscriptions not enabled/);
  });
});

describe('FHIR bases are separate', () => {
  test('a subscription created at the R5 base is not served at the R4 base, and vice versa', {
  }, async () => {
    const atR5 = await createSub(r5.bob, r5Body());
    const atR4 = await createSub(r4.bob, backportBody());
    assertOutcome(await r4.bob.get(`Subscription/${atR5.id}`), 404, 'not-found');
    assertOutcome(await r5.bob.get(`Subscription/${atR4.id}`), 404, 'not-found');
    const search = await r4.bob.get('Subscription');
    assert.deepEqual(bundleIds(search.body), [atR4.id]);
    const status = await r5.bob.get('Subscription/$status');
    assert.equal(status.body.total, 1);
    assert.equal(status.body.entry[0].resource.subscription.reference, `${stack.httpd.baseUrl}${R5_PATH}/Subscription/${atR5.id}`);
  });
});
