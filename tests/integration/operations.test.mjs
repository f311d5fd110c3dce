// The Subscription operations: $get-ws-binding-token and $status, at type and instance
// level, GET and POST, in both FHIR shapes; the binding token, its grant rows, its errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startStack } from './lib/stack.mjs';
import { waitFor } from './lib/util.mjs';
import {
  TOPIC,
  URL,
  assertOutcome,
  backportBody,
  classicBody,
  clientsFor,
  countRows,
  createSub,
  decodeJwt,
  fhirsubDirectives,
  instantIn,
  issueText,
  jwtSignatureValid,
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
const ODDKEY_PATH = '/oddkey/R4';
const WS_URL = wsUrlFor(9, 'subscriptions-r4');
const WS_URL_R5 = wsUrlFor(9, 'subscriptions-r5');
const LIFETIME = 60;
// grant ids (jti): UUID version 7, time-ordered (its first 48 bits: issue time in ms)
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let stack;
let key;
let oddKeyFile;
let r4;
let r5;
const issuedTokens = [];

before(async () => {
  key = makeKeyDir();
  // a secret with NUL bytes inside and a newline at the end, as `echo` would leave it
  oddKeyFile = path.join(key.dir, 'odd.key');
  fs.writeFileSync(oddKeyFile, Buffer.concat([Buffer.from([0]), Buffer.alloc(15, 0x41), Buffer.from([0]), Buffer.alloc(31, 0x42), Buffer.from('\n')]), {
    mode: 0o600,
  });
  stack = await startStack({
    users: USERS,
    // debug for the module: even its most verbose lines must not carry a token
    logLevel: 'warn fhirsub:debug',
    locations: ({ backend, fhirPath }) => [
      {
        path: fhirPath,
        directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: key.keyFile, lifetime: LIFETIME }),
        proxyTo: backend.url,
      },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL_R5, keyFile: key.keyFile, lifetime: LIFETIME, version: 'R5' }) },
      { path: ODDKEY_PATH, directives: fhirsubDirectives({ wsUrl: WS_URL, keyFile: oddKeyFile, lifetime: LIFETIME }) },
    ],
  });
  r4 = clientsFor(stack.fhirUrl);
  r5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`);
});

after(async () => {
  try {
    await stopAndCheckLog(stack);
  } finally {
    key?.cleanup();
  }
});

// ---- $get-ws-binding-token ----------------------------------------------------------------

/** Asserts a token answer in every detail; resolves to {token, jwt, expiration, ids}. */
async function assertTokenAnswer(res, { user, ids, wsUrl = WS_URL }) {
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /^application\/fhir\+json/);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.equal(res.body.resourceType, 'Parameters');
  // exactly the outputs of the definition, in its order, one subscription per id
  assert.deepEqual(
    res.body.parameter.map((p) => p.name),
    ['token', 'expiration', ...ids.map(() => 'subscription'), 'websocket-url'],
  );
  for (const p of res.body.parameter) assert.equal(Object.keys(p).length, 2, `one value in ${JSON.stringify(p)}`);
  const token = param(res.body, 'token').valueString;
  assert.equal(typeof token, 'string');
  issuedTokens.push(token);
  const expiration = param(res.body, 'expiration').valueDateTime;
  assert.match(expiration, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  assert.deepEqual(params(res.body, 'subscription').map((p) => p.valueString), ids);
  assert.equal(param(res.body, 'websocket-url').valueUrl, wsUrl);

  const jwt = decodeJwt(token);
  assert.equal(jwt.header.alg, 'HS256');
  assert.ok(jwtSignatureValid(token, key.keyFile, 'HS256'), 'signed with the configured key');
  assert.equal(jwt.payload.sub, user);
  assert.equal(jwt.payload.iss, 'mod_fhirsub');
  assert.equal(jwt.payload.aud, 'fhirsub-ws');
  assert.match(jwt.payload.jti, UUID_V7);
  const jtiMs = parseInt(jwt.payload.jti.replace(/-/g, '').slice(0, 12), 16);
  assert.equal(Math.floor(jtiMs / 1000), jwt.payload.iat, 'the grant id starts with the issue time');
  assert.deepEqual(jwt.payload.subscriptions, ids);
  assert.equal(jwt.payload.exp - jwt.payload.iat, LIFETIME);
  assert.ok(Math.abs(jwt.payload.iat - Date.now() / 1000) < 30, `iat ${jwt.payload.iat} is now`);
  assert.equal(Math.floor(Date.parse(expiration) / 1000), jwt.payload.exp, 'expiration equals exp');

  // the grant the token stands for
  const grants = await stack.query(
    `SELECT owner, issued_ms, expires_ms, revoked_ms FROM fhirsub_grant WHERE id = ${sqlString(jwt.payload.jti)}`,
  );
  assert.equal(grants.length, 1, 'one grant row');
  const [owner, issuedMs, expiresMs, revokedMs] = grants[0];
  assert.equal(owner, user);
  assert.equal(Number(expiresMs), Date.parse(expiration));
  assert.equal(Number(expiresMs) - Number(issuedMs), LIFETIME * 1000);
  assert.equal(revokedMs, '0');
  const links = await stack.query(
    `SELECT subscription_id FROM fhirsub_grant_subscription WHERE grant_id = ${sqlString(jwt.payload.jti)} ORDER BY subscription_id`,
  );
  assert.deepEqual(links.map((r) => r[0]), [...ids].sort());
  return { token, jwt, expiration, ids };
}

const grantCount = (user) => countRows(stack, 'fhirsub_grant', `owner = ${sqlString(user)}`);
const linkCount = (subId) => countRows(stack, 'fhirsub_grant_subscription', `subscription_id = ${sqlString(subId)}`);
const paramsBody = (...entries) => ({ resourceType: 'Parameters', parameter: entries.map(([name, value, vkey = 'valueId']) => ({ name, [vkey]: value })) });

describe('$get-ws-binding-token', () => {
  let a1;
  let a2;
  let off;
  let bobs;

  before(async () => {
    a1 = await createSub(r4.alice, backportBody());
    a2 = await createSub(r4.alice, classicBody());
    off = await createSub(r4.alice, backportBody({ topic: TOPIC.patientChange, filters: [], status: 'off' }));
    bobs = await createSub(r4.bob, backportBody());
  });

  test('instance level, GET: Parameters with token, expiration, subscription, websocket-url; grant rows', async () => {
    const res = await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token`);
    await assertTokenAnswer(res, { user: 'alice', ids: [a1.id] });
  });

  test('instance level, POST without a body (as Medplum\'s client sends it)', async () => {
    const res = await r4.alice.request('POST', `Subscription/${a1.id}/$get-ws-binding-token`, undefined, {
      'Content-Type': 'application/fhir+json',
    });
    await assertTokenAnswer(res, { user: 'alice', ids: [a1.id] });
  });

  test('instance level ignores an `id` parameter (query or body)', async () => {
    await assertTokenAnswer(await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token?id=${a2.id}`), { user: 'alice', ids: [a1.id] });
    const res = await r4.alice.post(`Subscription/${a1.id}/$get-ws-binding-token`, paramsBody(['id', a2.id]));
    await assertTokenAnswer(res, { user: 'alice', ids: [a1.id] });
  });

  test('type level with `id` in the query: one, comma-separated, repeated, duplicates once', async () => {
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id}`), { user: 'alice', ids: [a1.id] });
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},${a2.id}`), { user: 'alice', ids: [a1.id, a2.id] });
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a2.id}&id=${a1.id}`), { user: 'alice', ids: [a2.id, a1.id] });
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id}&id=${a1.id}`), { user: 'alice', ids: [a1.id] });
  });

  test('type level with a Parameters body (POST)', async () => {
    const res = await r4.alice.post('Subscription/$get-ws-binding-token', paramsBody(['id', a1.id], ['id', a2.id, 'valueString']));
    await assertTokenAnswer(res, { user: 'alice', ids: [a1.id, a2.id] });
  });

  test('the older `ids` parameter is accepted, alone or with `id`', async () => {
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?ids=${a1.id},${a2.id}`), { user: 'alice', ids: [a1.id, a2.id] });
    await assertTokenAnswer(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id}&ids=${a2.id}`), { user: 'alice', ids: [a1.id, a2.id] });
    const res = await r4.alice.post('Subscription/$get-ws-binding-token', paramsBody(['ids', `${a2.id},${a1.id}`, 'valueString']));
    await assertTokenAnswer(res, { user: 'alice', ids: [a2.id, a1.id] });
  });

  test('each call mints a new grant: tokens differ, jti differ', async () => {
    const one = await assertTokenAnswer(await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token`), { user: 'alice', ids: [a1.id] });
    const two = await assertTokenAnswer(await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token`), { user: 'alice', ids: [a1.id] });
    assert.notEqual(one.token, two.token);
    assert.notEqual(one.jwt.payload.jti, two.jwt.payload.jti);
  });

  test('no ids: a token for all the caller\'s active websocket subscriptions', async () => {
    const d1 = await createSub(r4.dave, backportBody());
    await createSub(r4.dave, backportBody({ status: 'off' }));
    const d3 = await createSub(r4.dave, classicBody());
    await assertTokenAnswer(await r4.dave.get('Subscription/$get-ws-binding-token'), { user: 'dave', ids: [d1.id, d3.id] });
    await assertTokenAnswer(await r4.dave.post('Subscription/$get-ws-binding-token', { resourceType: 'Parameters' }), {
      user: 'dave',
      ids: [d1.id, d3.id],
    });
  });

  test('no ids and no active websocket subscription: 404 OperationOutcome, no grant', async () => {
    const before = await grantCount('carol');
    const issue = assertOutcome(await r4.carol.get('Subscription/$get-ws-binding-token'), 404, 'not-found');
    assert.match(issueText(issue), /no active websocket Subscription/);
    assertOutcome(await r4.carol.post('Subscription/$get-ws-binding-token', { resourceType: 'Parameters' }), 404, 'not-found');
    assert.equal(await grantCount('carol'), before);
  });

  test('an unknown id answers 404 not-found, at both levels, and mints nothing', async () => {
    const before = await grantCount('alice');
    const linksBefore = await linkCount(a1.id);
    assertOutcome(await r4.alice.get('Subscription/no-such-sub/$get-ws-binding-token'), 404, 'not-found');
    assertOutcome(await r4.alice.get('Subscription/$get-ws-binding-token?id=no-such-sub'), 404, 'not-found');
    // one good id does not save a bad one, and leaves no grant link behind (PostgreSQL
    // writes the grant and reads the subscriptions at once, then deletes a refused grant)
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},no-such-sub`), 404, 'not-found');
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},${bobs.id}`), 404, 'not-found');
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},${off.id}`), 400);
    assert.equal(await grantCount('alice'), before);
    assert.equal(await linkCount(a1.id), linksBefore);
  });

  test('another user\'s subscription answers 404, like an unknown id', async () => {
    const before = await grantCount('alice');
    assertOutcome(await r4.alice.get(`Subscription/${bobs.id}/$get-ws-binding-token`), 404, 'not-found');
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${bobs.id}`), 404, 'not-found');
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', paramsBody(['id', bobs.id])), 404, 'not-found');
    assert.equal(await grantCount('alice'), before);
  });

  test('a subscription that is off answers 400', async () => {
    const issue = assertOutcome(await r4.alice.get(`Subscription/${off.id}/$get-ws-binding-token`), 400);
    assert.match(issueText(issue), /off/);
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${a1.id},${off.id}`), 400);
  });

  test('unknown parameters answer 400, in the query and in the body', async () => {
    const issue = assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?subscription=${a1.id}`), 400, 'invalid');
    assert.match(issueText(issue), /subscription/);
    assertOutcome(await r4.alice.get(`Subscription/${a1.id}/$get-ws-binding-token?foo=1`), 400, 'invalid');
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', paramsBody(['foo', 'x', 'valueString'])), 400, 'invalid');
  });

  test('a body that is not a usable Parameters answers 400', async () => {
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', { resourceType: 'Subscription' }), 400);
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', { resourceType: 'Parameters', parameter: {} }), 400);
    const part = { resourceType: 'Parameters', parameter: [{ name: 'id', part: [{ name: 'x', valueString: 'y' }] }] };
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', part), 400);
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', paramsBody(['id', 42, 'valueInteger'])), 404);
    assertOutcome(await r4.alice.post('Subscription/$get-ws-binding-token', '{"resourceType":"Parameters"'), 400, 'structure');
  });

  test('invalid ids answer 400, never 5xx', async () => {
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${encodeURIComponent("' OR '1'='1")}`), 400, 'invalid');
    assertOutcome(await r4.alice.get(`Subscription/$get-ws-binding-token?id=${'x'.repeat(65)}`), 400, 'invalid');
    assertOutcome(await r4.alice.get('Subscription/$get-ws-binding-token?id='), 400);
  });

  test('at the R5 base: the R5 websocket URL', async () => {
    const sub = await createSub(r5.erin, r5Body());
    await assertTokenAnswer(await r5.erin.get(`Subscription/${sub.id}/$get-ws-binding-token`), { user: 'erin', ids: [sub.id], wsUrl: WS_URL_R5 });
  });

  test('an HMAC secret is used whole: NUL bytes count, only trailing whitespace is dropped', async () => {
    const odd = clientsFor(`${stack.httpd.baseUrl}${ODDKEY_PATH}`).alice;
    const sub = await createSub(odd, backportBody());
    const res = await odd.get(`Subscription/${sub.id}/$get-ws-binding-token`);
    assert.equal(res.status, 200, res.text);
    const token = param(res.body, 'token').valueString;
    issuedTokens.push(token);
    const bytes = fs.readFileSync(oddKeyFile);
    assert.ok(jwtSignatureValid(token, bytes.subarray(0, bytes.length - 1)), 'signed with the 48 bytes before the newline');
    assert.ok(!jwtSignatureValid(token, Buffer.alloc(0)), 'not with the empty string before the first NUL');
    assert.ok(!jwtSignatureValid(token, bytes.subarray(0, 16)), 'not up to the second NUL');
  });

  test('methods other than GET and POST answer 405', async () => {
    assertOutcome(await r4.alice.put(`Subscription/${a1.id}/$get-ws-binding-token`, { resourceType: 'Parameters' }), 405);
    assertOutcome(await r4.alice.del('Subscription/$get-ws-binding-token'), 405);
  });

  test('no token ever reaches the error log or the access log', () => {
    assert.ok(issuedTokens.length >= 10, `${issuedTokens.length} tokens issued`);
    const logs = `${stack.httpd.errorLog()}\n${stack.httpd.accessLog()}`;
    for (const token of issuedTokens) {
      const [, payload, signature] = token.split('.');
      assert.ok(!logs.includes(signature), 'a token signature is in a log');
      assert.ok(!logs.includes(payload), 'a token payload is in a log');
    }
    // the grant ids are logged instead (FS10640), so a token can still be traced
    const { jti } = decodeJwt(issuedTokens[0]).payload;
    assert.match(stack.httpd.errorLog(), new RegExp(`FS10640: binding token ${jti} issued to alice`));
  });
});

// ---- $status --------------------------------------------------------------------------------

/** The R4 status Parameters of an entry as {name: value}. */
function r4Status(entry) {
  const res = entry.resource;
  assert.equal(res.resourceType, 'Parameters');
  assert.deepEqual(res.meta.profile, [URL.backportStatusR4]);
  const out = {};
  for (const p of res.parameter) {
    const vkey = Object.keys(p).find((k) => k.startsWith('value'));
    out[p.name] = { [vkey]: p[vkey] };
  }
  return { names: res.parameter.map((p) => p.name), values: out };
}

function assertSearchset(res, total) {
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /^application\/fhir\+json/);
  assert.equal(res.body.resourceType, 'Bundle');
  assert.equal(res.body.type, 'searchset');
  assert.equal(res.body.total, total);
  // FHIR JSON has no empty arrays: an empty searchset has no `entry` at all
  if (total === 0) assert.equal(res.body.entry, undefined, 'no empty entry array');
  else assert.equal(res.body.entry.length, total);
  assert.ok(!Number.isNaN(Date.parse(res.body.timestamp)), 'timestamp');
  for (const entry of res.body.entry ?? []) {
    assert.deepEqual(entry.search, { mode: 'match' });
    assert.match(entry.fullUrl, /^urn:uuid:[0-9a-f-]{36}$/);
  }
}

describe('$status (R4: backport status Parameters)', () => {
  let enc;
  let pat;
  let cls;
  const ref = (sub) => `${stack.fhirUrl}/Subscription/${sub.id}`;

  // the subscriptions (by reference) a status searchset reports
  function reported(res) {
    assert.equal(res.status, 200, res.text);
    return (res.body.entry ?? []).map((e) => r4Status(e).values.subscription.valueReference.reference).sort();
  }
  const refs = (...subs) => subs.map(ref).sort();

  before(async () => {
    enc = await createSub(r4.carol, backportBody({ topic: TOPIC.encounterComplete }));
    pat = await createSub(r4.carol, backportBody({ topic: TOPIC.patientChange, filters: [], status: 'off' }));
    cls = await createSub(r4.carol, classicBody());
  });

  test('type level, GET: one entry per subscription, every element in place', async () => {
    const res = await r4.carol.get('Subscription/$status');
    assertSearchset(res, 3);
    const byRef = Object.fromEntries(res.body.entry.map((e) => [r4Status(e).values.subscription.valueReference.reference, r4Status(e)]));
    assert.deepEqual(Object.keys(byRef).sort(), refs(enc, pat, cls));
    assert.deepEqual(byRef[ref(enc)].names, ['subscription', 'topic', 'status', 'type', 'events-since-subscription-start']);
    assert.deepEqual(byRef[ref(enc)].values, {
      subscription: { valueReference: { reference: ref(enc) } },
      topic: { valueCanonical: TOPIC.encounterComplete },
      status: { valueCode: 'active' },
      type: { valueCode: 'query-status' },
      'events-since-subscription-start': { valueString: '0' },
    });
    assert.equal(byRef[ref(pat)].values.status.valueCode, 'off');
    assert.equal(byRef[ref(pat)].values.topic.valueCanonical, TOPIC.patientChange);
    // a classic subscription has no topic
    assert.deepEqual(byRef[ref(cls)].names, ['subscription', 'status', 'type', 'events-since-subscription-start']);
  });

  test('`id` filter: OR within, comma-separated or repeated', async () => {
    assert.deepEqual(reported(await r4.carol.get(`Subscription/$status?id=${enc.id}`)), refs(enc));
    assert.deepEqual(reported(await r4.carol.get(`Subscription/$status?id=${enc.id},${cls.id}`)), refs(enc, cls));
    assert.deepEqual(reported(await r4.carol.get(`Subscription/$status?id=${pat.id}&id=${cls.id}`)), refs(pat, cls));
  });

  test('`status` filter: OR within', async () => {
    assert.deepEqual(reported(await r4.carol.get('Subscription/$status?status=active')), refs(enc, cls));
    assert.deepEqual(reported(await r4.carol.get('Subscription/$status?status=off')), refs(pat));
    assert.deepEqual(reported(await r4.carol.get('Subscription/$status?status=active,off')), refs(enc, pat, cls));
    assert.deepEqual(reported(await r4.carol.get('Subscription/$status?status=off&status=active')), refs(enc, pat, cls));
    assertSearchset(await r4.carol.get('Subscription/$status?status=error'), 0);
    assertSearchset(await r4.carol.get('Subscription/$status?status=requested'), 0);
  });

  test('`id` and `status` are ANDed', async () => {
    assert.deepEqual(reported(await r4.carol.get(`Subscription/$status?id=${enc.id},${pat.id}&status=off`)), refs(pat));
    assertSearchset(await r4.carol.get(`Subscription/$status?id=${enc.id}&status=off`), 0);
  });

  test('unknown ids are omitted at type level', async () => {
    const res = await r4.carol.get(`Subscription/$status?id=${enc.id},no-such-sub`);
    assertSearchset(res, 1);
    assert.deepEqual(reported(res), refs(enc));
    assertSearchset(await r4.carol.get('Subscription/$status?id=no-such-sub'), 0);
  });

  test('type level, POST with a Parameters body', async () => {
    const res = await r4.carol.post('Subscription/$status', paramsBody(['id', enc.id], ['id', pat.id], ['status', 'active', 'valueCode']));
    assertSearchset(res, 1);
    assert.deepEqual(reported(res), refs(enc));
    const all = await r4.carol.post('Subscription/$status', { resourceType: 'Parameters' });
    assertSearchset(all, 3);
  });

  test('instance level, GET and POST; its `id` and `status` parameters are ignored', async () => {
    let res = await r4.carol.get(`Subscription/${pat.id}/$status`);
    assertSearchset(res, 1);
    assert.equal(r4Status(res.body.entry[0]).values.status.valueCode, 'off');
    assert.deepEqual(reported(res), refs(pat));
    res = await r4.carol.get(`Subscription/${enc.id}/$status?status=off&id=${cls.id}`);
    assert.deepEqual(reported(res), refs(enc));
    res = await r4.carol.post(`Subscription/${cls.id}/$status`, { resourceType: 'Parameters' });
    assertSearchset(res, 1);
    assert.deepEqual(reported(res), refs(cls));
    res = await r4.carol.request('POST', `Subscription/${enc.id}/$status`, undefined, { 'Content-Type': 'application/fhir+json' });
    assert.deepEqual(reported(res), refs(enc));
  });

  test('instance level with an unknown id answers 404', async () => {
    assertOutcome(await r4.carol.get('Subscription/no-such-sub/$status'), 404, 'not-found');
    assertOutcome(await r4.carol.post('Subscription/no-such-sub/$status', { resourceType: 'Parameters' }), 404, 'not-found');
  });

  test('an invalid status code answers 400; entered-in-error is R5 only', async () => {
    const issue = assertOutcome(await r4.carol.get('Subscription/$status?status=bogus'), 400, 'invalid');
    assert.match(issueText(issue), /bogus/);
    assertOutcome(await r4.carol.get('Subscription/$status?status=entered-in-error'), 400, 'invalid');
    assertOutcome(await r4.carol.post('Subscription/$status', paramsBody(['status', 'bogus', 'valueCode'])), 400, 'invalid');
  });

  test('unknown parameters answer 400', async () => {
    assertOutcome(await r4.carol.get('Subscription/$status?_count=5'), 400, 'invalid');
    assertOutcome(await r4.carol.get(`Subscription/${enc.id}/$status?foo=1`), 400, 'invalid');
    assertOutcome(await r4.carol.post('Subscription/$status', paramsBody(['ids', enc.id, 'valueString'])), 400, 'invalid');
  });

  test('invalid ids at instance level answer 400', async () => {
    assertOutcome(await r4.carol.get(`Subscription/${encodeURIComponent("x'--")}/$status`), 400, 'invalid');
  });
});

describe('$status (R5: SubscriptionStatus)', () => {
  let active;
  let off;
  const ref = (sub) => `${stack.httpd.baseUrl}${R5_PATH}/Subscription/${sub.id}`;

  before(async () => {
    // erin already has one R5 subscription from the token tests; use filters to be exact
    active = await createSub(r5.erin, r5Body({ topic: TOPIC.encounterStart }));
    off = await createSub(r5.erin, r5Body({ topic: TOPIC.patientChange, filterBy: [], status: 'off' }));
  });

  test('entries are SubscriptionStatus resources', async () => {
    const res = await r5.erin.get(`Subscription/$status?id=${active.id},${off.id}`);
    assertSearchset(res, 2);
    const byRef = Object.fromEntries(res.body.entry.map((e) => [e.resource.subscription.reference, e.resource]));
    assert.deepEqual(byRef[ref(active)], {
      resourceType: 'SubscriptionStatus',
      status: 'active',
      type: 'query-status',
      eventsSinceSubscriptionStart: '0',
      subscription: { reference: ref(active) },
      topic: TOPIC.encounterStart,
    });
    assert.equal(byRef[ref(off)].status, 'off');
  });

  test('status filter and instance level at the R5 base', async () => {
    const res = await r5.erin.get(`Subscription/$status?id=${active.id},${off.id}&status=off`);
    assertSearchset(res, 1);
    assert.equal(res.body.entry[0].resource.subscription.reference, ref(off));
    const inst = await r5.erin.post(`Subscription/${active.id}/$status`, { resourceType: 'Parameters' });
    assertSearchset(inst, 1);
    assert.equal(inst.body.entry[0].resource.resourceType, 'SubscriptionStatus');
    assert.equal(inst.body.entry[0].resource.subscription.reference, ref(active));
  });

  test('entered-in-error is a valid status code in R5', async () => {
    assertSearchset(await r5.erin.get(`Subscription/$status?id=${active.id}&status=entered-in-error`), 0);
  });
});

describe('a subscription whose `end` has passed', () => {
  test('reads off at once: read, $status and $get-ws-binding-token agree', async () => {
    const sub = await createSub(r4.alice, backportBody({ end: instantIn(2) }));
    assert.equal(sub.status, 'active');
    await assertTokenAnswer(await r4.alice.get(`Subscription/${sub.id}/$get-ws-binding-token`), { user: 'alice', ids: [sub.id] });
    await waitFor(() => Date.now() > Date.parse(sub.end) + 200, { what: 'the end of the subscription', timeoutMs: 5000 });
    const read = await r4.alice.get(`Subscription/${sub.id}`);
    assert.equal(read.body.status, 'off');
    const status = await r4.alice.get(`Subscription/${sub.id}/$status`);
    assert.equal(r4Status(status.body.entry[0]).values.status.valueCode, 'off');
    assert.equal((await r4.alice.get(`Subscription/$status?id=${sub.id}&status=off`)).body.total, 1);
    assertOutcome(await r4.alice.get(`Subscription/${sub.id}/$get-ws-binding-token`), 400);
    // the row keeps what the client asked for; `off` is derived from end
    assert.equal((await subRow(stack, sub.id)).status, 'active');
  });
});

describe('other operations', () => {
  test('$events of a subscription without events: the status entry only, in each shape', async () => {
    const sub = await createSub(r4.alice, backportBody());
    const res = await r4.alice.get(`Subscription/${sub.id}/$events`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.resourceType, 'Bundle');
    assert.equal(res.body.type, 'history');
    assert.equal(res.body.entry.length, 1);
    const { values } = r4Status(res.body.entry[0]);
    assert.equal(values.type.valueCode, 'query-event');
    assert.equal(values['events-since-subscription-start'].valueString, '0');
    assert.equal(values.subscription.valueReference.reference, `${stack.fhirUrl}/Subscription/${sub.id}`);
    const sub5 = await createSub(r5.erin, r5Body());
    const res5 = await r5.erin.get(`Subscription/${sub5.id}/$events`);
    assert.equal(res5.status, 200, res5.text);
    assert.equal(res5.body.type, 'subscription-notification');
    assert.equal(res5.body.entry[0].resource.resourceType, 'SubscriptionStatus');
    assert.equal(res5.body.entry[0].resource.type, 'query-event');
    // an instance operation only; other users' subscriptions are not found
    assertOutcome(await r4.alice.get('Subscription/$events'), 400);
    assertOutcome(await r4.bob.get(`Subscription/${sub.id}/$events`), 404, 'not-found');
  });

  test('an unknown operation answers 404 OperationOutcome', async () => {
    assertOutcome(await r4.alice.get('Subscription/$nope'), 404);
    assertOutcome(await r4.alice.post('Subscription/some-id/$nope', { resourceType: 'Parameters' }), 404);
  });
});
