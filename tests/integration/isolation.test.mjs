// Cross-user isolation: alice's subscriptions do not exist for bob, in any endpoint, at any
// FHIR base; what bob tries changes nothing of alice's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack } from './lib/stack.mjs';
import {
  TOPIC,
  assertOutcome,
  backportBody,
  bundleIds,
  classicBody,
  clientsFor,
  createSub,
  decodeJwt,
  fhirsubDirectives,
  makeKeyDir,
  param,
  params,
  r5Body,
  sqlString,
  stopAndCheckLog,
  subRow,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';

const R5_PATH = '/fhir/R5';
const WS_URL = wsUrlFor(9);

let stack;
let key;
let r4;
let r5;
// alice's subscriptions and grant; bob's subscription
let a1;
let a2;
let a5;
let aliceJti;
let b1;

before(async () => {
  key = makeKeyDir();
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile }), proxyTo: backend.url },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, version: 'R5' }) },
    ],
  });
  r4 = clientsFor(stack.fhirUrl);
  r5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`);
  a1 = await createSub(r4.alice, backportBody());
  a2 = await createSub(r4.alice, classicBody());
  a5 = await createSub(r5.alice, r5Body());
  const token = await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token`);
  assert.equal(token.status, 200, token.text);
  aliceJti = decodeJwt(param(token.body, 'token').valueString).payload.jti;
  b1 = await createSub(r4.bob, backportBody({ topic: TOPIC.encounterComplete }));
});

after(async () => {
  try {
    await stopAndCheckLog(stack);
  } finally {
    key?.cleanup();
  }
});

// What "not found" looks like for an id that never existed: another user's must look the same.
async function assertLikeUnknown(res, unknownRes) {
  assertOutcome(res, 404, 'not-found');
  assert.equal(res.status, unknownRes.status);
  assert.equal(res.body.issue[0].code, unknownRes.body.issue[0].code);
}

describe('alice\'s subscriptions do not exist for bob', () => {
  test('read and vread answer 404, exactly like an unknown id', async () => {
    const unknown = await r4.bob.get('Subscription/never-existed');
    for (const sub of [a1, a2]) {
      await assertLikeUnknown(await r4.bob.get(`Subscription/${sub.id}`), unknown);
      await assertLikeUnknown(await r4.bob.get(`Subscription/${sub.id}/_history/1`), unknown);
    }
    await assertLikeUnknown(await r5.bob.get(`Subscription/${a5.id}`), unknown);
  });

  test('search shows bob only his own', async () => {
    let res = await r4.bob.get('Subscription');
    assert.equal(res.status, 200);
    assert.deepEqual(bundleIds(res.body), [b1.id]);
    res = await r4.bob.get(`Subscription?_id=${a1.id},${a2.id}`);
    assert.equal(res.body.total, 0);
    res = await r4.bob.get(`Subscription?url=${encodeURIComponent(TOPIC.encounterComplete)}`);
    assert.deepEqual(bundleIds(res.body), [b1.id]);
    res = await r4.bob.request('POST', 'Subscription/_search', `_id=${a1.id}`, { 'Content-Type': 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 200);
    assert.equal(res.body.total, 0);
    res = await r5.bob.get(`Subscription?_id=${a5.id}`);
    assert.equal(res.body.total, 0);
  });

  test('$status: omitted at type level, 404 at instance level', async () => {
    const refs = (res) => (res.body.entry ?? []).map((e) => e.resource.parameter.find((p) => p.name === 'subscription').valueReference.reference);
    let res = await r4.bob.get('Subscription/$status');
    assert.equal(res.status, 200);
    assert.deepEqual(refs(res), [`${stack.fhirUrl}/Subscription/${b1.id}`]);
    res = await r4.bob.get(`Subscription/$status?id=${a1.id}`);
    assert.equal(res.body.total, 0);
    res = await r4.bob.get(`Subscription/$status?id=${a1.id},${b1.id}`);
    assert.deepEqual(refs(res), [`${stack.fhirUrl}/Subscription/${b1.id}`]);
    res = await r4.bob.post('Subscription/$status', { resourceType: 'Parameters', parameter: [{ name: 'id', valueId: a2.id }] });
    assert.equal(res.body.total, 0);
    assertOutcome(await r4.bob.get(`Subscription/${a1.id}/$status`), 404, 'not-found');
    assertOutcome(await r4.bob.post(`Subscription/${a2.id}/$status`, { resourceType: 'Parameters' }), 404, 'not-found');
    assertOutcome(await r5.bob.get(`Subscription/${a5.id}/$status`), 404, 'not-found');
  });

  test('$get-ws-binding-token answers 404 for any of alice\'s ids; bob\'s own token covers only his', async () => {
    const grantsBefore = await stack.query(`SELECT COUNT(*) FROM fhirsub_grant WHERE owner = ${sqlString('bob')}`);
    assertOutcome(await r4.bob.get(`Subscription/${a1.id}/$get-ws-binding-token`), 404, 'not-found');
    assertOutcome(await r4.bob.post(`Subscription/${a1.id}/$get-ws-binding-token`, { resourceType: 'Parameters' }), 404, 'not-found');
    assertOutcome(await r4.bob.get(`Subscription/$get-ws-binding-token?id=${a1.id}`), 404, 'not-found');
    assertOutcome(await r4.bob.get(`Subscription/$get-ws-binding-token?id=${b1.id},${a2.id}`), 404, 'not-found');
    assertOutcome(await r4.bob.get(`Subscription/$get-ws-binding-token?ids=${a2.id}`), 404, 'not-found');
    const body = { resourceType: 'Parameters', parameter: [{ name: 'id', valueId: a1.id }] };
    assertOutcome(await r4.bob.post('Subscription/$get-ws-binding-token', body), 404, 'not-found');
    assertOutcome(await r5.bob.get(`Subscription/${a5.id}/$get-ws-binding-token`), 404, 'not-found');
    assert.deepEqual(await stack.query(`SELECT COUNT(*) FROM fhirsub_grant WHERE owner = ${sqlString('bob')}`), grantsBefore);
    // no ids: everything bob has, which is b1 only
    const all = await r4.bob.get('Subscription/$get-ws-binding-token');
    assert.equal(all.status, 200, all.text);
    assert.deepEqual(params(all.body, 'subscription').map((p) => p.valueString), [b1.id]);
    const jwt = decodeJwt(param(all.body, 'token').valueString);
    assert.equal(jwt.payload.sub, 'bob');
    assert.deepEqual(jwt.payload.subscriptions, [b1.id]);
  });

  test('$events answers 404', async () => {
    assertOutcome(await r4.bob.get(`Subscription/${a1.id}/$events`), 404, 'not-found');
  });

  test('PUT and DELETE answer 404 and change nothing', async () => {
    const read = await r4.alice.get(`Subscription/${a1.id}`);
    const put = await r4.bob.put(`Subscription/${a1.id}`, { ...read.body, status: 'off' });
    assertOutcome(put, 404, 'not-found');
    assertOutcome(await r4.bob.put(`Subscription/${a1.id}`, { ...read.body, status: 'off' }, { 'If-Match': 'W/"1"' }), 404, 'not-found');
    assertOutcome(await r4.bob.del(`Subscription/${a1.id}`), 404, 'not-found');
    assertOutcome(await r4.bob.del(`Subscription/${a2.id}`), 404, 'not-found');
    assertOutcome(await r5.bob.del(`Subscription/${a5.id}`), 404, 'not-found');
    const row = await subRow(stack, a1.id);
    assert.equal(row.owner, 'alice');
    assert.equal(row.status, 'active');
    assert.equal(row.version_id, '1');
    assert.ok(await subRow(stack, a2.id));
    assert.ok(await subRow(stack, a5.id));
  });

  test('creating with alice\'s id makes a new subscription, alice\'s stays hers', async () => {
    const res = await r4.bob.post('Subscription', { ...backportBody(), id: a1.id });
    assert.equal(res.status, 201, res.text);
    assert.notEqual(res.body.id, a1.id);
    assert.equal((await subRow(stack, res.body.id)).owner, 'bob');
    assert.equal((await subRow(stack, a1.id)).owner, 'alice');
  });
});

describe('alice\'s subscriptions still exist afterwards', () => {
  test('read, search, $status and the grant are as before', async () => {
    const read = await r4.alice.get(`Subscription/${a1.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.status, 'active');
    assert.equal(read.headers.etag, 'W/"1"');
    assert.equal((await r4.alice.get(`Subscription/${a2.id}`)).status, 200);
    assert.equal((await r5.alice.get(`Subscription/${a5.id}`)).status, 200);
    const search = await r4.alice.get(`Subscription?_id=${a1.id},${a2.id}`);
    assert.deepEqual(bundleIds(search.body), [a1.id, a2.id].sort());
    const status = await r4.alice.get(`Subscription/$status?id=${a1.id},${a2.id}`);
    assert.equal(status.body.total, 2);
    const grant = await stack.query(`SELECT owner, revoked_ms FROM fhirsub_grant WHERE id = ${sqlString(aliceJti)}`);
    assert.deepEqual(grant, [['alice', '0']]);
    const token = await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},${a2.id}`);
    assert.equal(token.status, 200, token.text);
  });

  test('and bob\'s own is unaffected by alice', async () => {
    assertOutcome(await r4.alice.get(`Subscription/${b1.id}`), 404, 'not-found');
    assertOutcome(await r4.alice.del(`Subscription/${b1.id}`), 404, 'not-found');
    assert.equal((await r4.bob.get(`Subscription/${b1.id}`)).status, 200);
  });
});
