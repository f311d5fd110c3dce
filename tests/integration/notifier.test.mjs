// fhirsub-notifier end to end: real httpd + mod_fhirsub issue the tokens, the notifier
// (the built binary) validates them against the same database and talks to real websocket
// clients (the `ws` package, raw sockets; Medplum's client in medplum.test.mjs).
// Runs on FHIRSUB_DB=sqlite3 and =pgsql alike.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import {
  backportBody,
  classicBody,
  r5Body,
  clientsFor,
  createSub,
  fhirsubDirectives,
  makeKeyDir,
  param,
  sqlString,
  stopAndCheckLog,
  USERS,
} from './lib/fhirsub.mjs';
import {
  insertGrant,
  mintToken,
  NOTIFIER_LSAN_BIN,
  notifierProblems,
  rawWsConnect,
  recordEvent,
  recordEvents,
  sendWake,
  startNotifier,
  tokenClaims,
  wsFrame,
  WS_PATH,
} from './lib/notifier.mjs';
import { freePorts } from './lib/ports.mjs';
import { startStack } from './lib/stack.mjs';
import { makeTempDir, removeDir, sleep, waitFor } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const HEARTBEAT = 1;
// Short enough for the expiry and revalidation tests, long enough for slow machines.
const REVALIDATE = 1;
const BIND_TIMEOUT = 4;

let stack;
let key;
let nt;
let wakePort;
let clients;
let clientsR5;
const R5_PATH = '/fhir/R5';

before(async () => {
  key = makeKeyDir();
  const [ntPort, wake] = await freePorts(2);
  wakePort = wake;
  const wsUrl = `ws://127.0.0.1:${ntPort}${WS_PATH}`;
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: fhirsubDirectives({ wsUrl, keyFile: key.keyFile, lifetime: 60 }), proxyTo: backend.url },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl, keyFile: key.keyFile, lifetime: 60, version: 'R5' }) },
    ],
    // the websocket URL through Apache too, as the demo serves it
    serverDirectives: [`ProxyPass ${WS_PATH} ws://127.0.0.1:${ntPort}${WS_PATH}`],
  });
  clients = clientsFor(stack.fhirUrl);
  clientsR5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`);
  nt = await startNotifier({
    stack,
    keyFile: key.keyFile,
    port: ntPort,
    config: {
      RevalidateInterval: REVALIDATE,
      BindTimeout: BIND_TIMEOUT,
      // wake-ups are the fast path; polling only as a slow fallback here
      PollInterval: 30,
      WakeListen: stack.db === 'sqlite3' ? `127.0.0.1:${wakePort}` : undefined,
    },
  });
});

after(async () => {
  const log = nt?.log() ?? '';
  await nt?.stop();
  await stopAndCheckLog(stack);
  key?.cleanup();
  // the notifier warns about what it cut off on purpose (slow clients), nothing else
  assert.deepEqual(
    notifierProblems(log, [
      /FS20305: .* too slow/, // slow clients cut off on purpose
      /FS20105: .* of another user: refused/, // the forged token of another user's subscription
      /lws: User code denied connection/, // upgrades on another path
    ]),
    [],
    'notifier warnings or errors',
  );
});

// ---- helpers -------------------------------------------------------------------------

async function newSub(user = 'alice', body = backportBody({ heartbeat: HEARTBEAT, content: 'id-only' })) {
  return createSub(clients[user], body);
}

/** $get-ws-binding-token for ids as user: {token, url, expiration}. */
async function tokenFor(user, ...ids) {
  const query = ids.map((id) => `id=${id}`).join('&');
  const res = await clients[user].get(`Subscription/$get-ws-binding-token${query ? `?${query}` : ''}`);
  assert.equal(res.status, 200, res.text);
  return {
    token: param(res.body, 'token').valueString,
    url: param(res.body, 'websocket-url').valueUrl,
    expiration: param(res.body, 'expiration').valueDateTime,
  };
}

/** Next message, skipping heartbeats unless asked for. */
async function nextMessage(ws, { heartbeats = false, timeoutMs = 10_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = await ws.next({ timeoutMs: Math.max(1, deadline - Date.now()) });
    if (!heartbeats && notificationType(m) === 'heartbeat') continue;
    return m;
  }
}

/** Drops what already arrived (e.g. heartbeats of an earlier period). */
async function drain(ws) {
  for (;;) {
    try {
      await ws.next({ timeoutMs: 1 });
    } catch {
      return;
    }
  }
}

function statusResource(bundle) {
  return bundle?.entry?.[0]?.resource;
}

/** The notification type of a Bundle in any of the three shapes. */
function notificationType(bundle) {
  const st = statusResource(bundle);
  if (!st) return undefined;
  if (st.resourceType === 'Parameters') return st.parameter.find((p) => p.name === 'type')?.valueCode;
  return st.type;
}

function backportParam(bundle, name) {
  return statusResource(bundle).parameter.find((p) => p.name === name);
}

function eventNumbers(bundle) {
  const st = statusResource(bundle);
  if (st.resourceType === 'Parameters') {
    return st.parameter
      .filter((p) => p.name === 'notification-event')
      .map((p) => Number(p.part.find((q) => q.name === 'event-number').valueString));
  }
  return (st.notificationEvent ?? []).map((e) => Number(e.eventNumber));
}

function subscriptionRef(bundle) {
  const st = statusResource(bundle);
  if (st.resourceType === 'Parameters') return backportParam(bundle, 'subscription').valueReference.reference;
  return st.subscription.reference;
}

/** Waits for the close of a connection: {code, reason}. */
async function closed(ws, timeoutMs = 10_000) {
  await waitFor(() => ws.closeInfo(), { what: 'the websocket to close', timeoutMs });
  return ws.closeInfo();
}

/** Expects the connection to stay open for ms (no close meanwhile). */
async function staysOpen(ws, ms = 1500) {
  await sleep(ms);
  assert.equal(ws.closeInfo(), null, `closed: ${JSON.stringify(ws.closeInfo())}`);
}

async function wake(subId) {
  if (stack.db === 'sqlite3') await sendWake(wakePort, subId ?? '');
}

async function record(subId, opts = {}) {
  await recordEvent(stack, subId, { notify: true, ...opts });
  await wake(subId);
}

async function bound(url = nt.url) {
  return connectWs(url);
}

/** Connect, bind a token as text, return {ws, handshake}. */
async function bindText(token, { url = nt.url, variant = 'space' } = {}) {
  const ws = await bound(url);
  ws.send(variant === 'colon' ? `bind-with-token: ${token}` : `bind-with-token ${token}`);
  const handshake = await nextMessage(ws);
  return { ws, handshake };
}

// ---- the flow --------------------------------------------------------------------------

describe('bind, handshake, heartbeat', () => {
  test('create → $get-ws-binding-token → connect to websocket-url → bind → handshake → heartbeat', async () => {
    const sub = await newSub();
    const { token, url } = await tokenFor('alice', sub.id);
    assert.equal(url, nt.url);
    const { ws, handshake } = await bindText(token, { url });
    assert.equal(handshake.resourceType, 'Bundle');
    assert.equal(handshake.type, 'history');
    assert.equal(notificationType(handshake), 'handshake');
    assert.equal(subscriptionRef(handshake), `${stack.fhirUrl}/Subscription/${sub.id}`);
    assert.equal(backportParam(handshake, 'status').valueCode, 'active');
    assert.equal(backportParam(handshake, 'events-since-subscription-start').valueString, '0');
    assert.equal(handshake.entry[0].request.url, `${stack.fhirUrl}/Subscription/${sub.id}/$status`);
    const started = Date.now();
    const hb = await nextMessage(ws, { heartbeats: true, timeoutMs: 5000 });
    assert.equal(notificationType(hb), 'heartbeat');
    assert.equal(subscriptionRef(hb), `${stack.fhirUrl}/Subscription/${sub.id}`);
    assert.ok(Date.now() - started >= 500, 'heartbeat at the period, not at once');
    const hb2 = await nextMessage(ws, { heartbeats: true, timeoutMs: 5000 });
    assert.equal(notificationType(hb2), 'heartbeat');
    await ws.close();
  });

  test('one connection carries several subscriptions: one handshake each', async () => {
    const a = await newSub();
    const b = await newSub();
    const { token } = await tokenFor('alice', a.id, b.id);
    const ws = await bound();
    ws.send(`bind-with-token ${token}`);
    const refs = [subscriptionRef(await nextMessage(ws)), subscriptionRef(await nextMessage(ws))].sort();
    assert.deepEqual(refs, [a.id, b.id].map((id) => `${stack.fhirUrl}/Subscription/${id}`).sort());
    await ws.close();
  });

  test('the "bind-with-token:" variant, the JSON dialect and ?token= bind too', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const colon = await bindText(token, { variant: 'colon' });
    assert.equal(notificationType(colon.handshake), 'handshake');
    await colon.ws.close();

    const json = await bound();
    json.send({ type: 'bind-with-token', payload: { token } });
    assert.equal(notificationType(await nextMessage(json)), 'handshake');
    json.send({ type: 'ping' });
    assert.deepEqual(await nextMessage(json), { type: 'pong' });
    await json.close();

    const from = nt.logSize();
    const query = await bound(`${nt.url}?token=${encodeURIComponent(token)}`);
    assert.equal(notificationType(await nextMessage(query)), 'handshake');
    await nt.waitForLog(/FS20205: .*tokens in URLs end up in logs/, { from });
    assert.ok(!nt.log().includes(token), 'the token never reaches the log');
    await query.close();
  });

  test('through Apache httpd (mod_proxy_wstunnel), as Medplum and the demo connect', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const viaHttpd = `${stack.httpd.baseUrl.replace('http://', 'ws://')}${WS_PATH}`;
    const { ws, handshake } = await bindText(token, { url: viaHttpd });
    assert.equal(notificationType(handshake), 'handshake');
    assert.equal(notificationType(await nextMessage(ws, { heartbeats: true })), 'heartbeat');
    await ws.close();
  });
});

// ---- refusals: the bind rule ----------------------------------------------------------------

/** Binds token as text on a fresh connection and expects a 1008 close with reason. */
async function expectRefused(token, reason) {
  const ws = await bound();
  ws.send(`bind-with-token ${token}`);
  const info = await closed(ws);
  assert.deepEqual(info, { code: 1008, reason }, `close of a bind expected to fail with ${reason}`);
}

/** A grant row + token made by the test (as mod_fhirsub would), for cases the module refuses to mint. */
async function forgedToken({ user = 'alice', subscriptions, lifetime = 60, owner = user, grantExpiresMs, alg, header } = {}) {
  const jti = crypto.randomUUID();
  await insertGrant(stack, { id: jti, owner, subscriptions, expiresMs: grantExpiresMs ?? Date.now() + lifetime * 1000 });
  return { jti, token: mintToken(key.keyFile, tokenClaims({ user, jti, subscriptions, lifetime }), { alg, header }) };
}

describe('refused binds (text dialect: 1008 + reason when nothing else is bound)', () => {
  test('expired token', async () => {
    const sub = await newSub();
    const { token } = await forgedToken({ subscriptions: [sub.id], lifetime: 1 });
    await sleep(2100);
    await expectRefused(token, 'expired-token');
  });

  test('tampered token (payload changed, signature kept)', async () => {
    const sub = await newSub();
    const other = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.subscriptions = [other.id];
    await expectRefused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, 'invalid-signature');
    // a flipped signature character too
    const flipped = s[0] === 'A' ? `B${s.slice(1)}` : `A${s.slice(1)}`;
    await expectRefused(`${h}.${p}.${flipped}`, 'invalid-signature');
  });

  test('"alg": "none" and other algorithms are refused before any signature check', async () => {
    const sub = await newSub();
    const jti = crypto.randomUUID();
    await insertGrant(stack, { id: jti, owner: 'alice', subscriptions: [sub.id] });
    const claims = tokenClaims({ user: 'alice', jti, subscriptions: [sub.id] });
    await expectRefused(mintToken(key.keyFile, claims, { alg: 'none' }), 'unexpected-algorithm');
    await expectRefused(mintToken(key.keyFile, claims, { alg: 'HS512' }), 'unexpected-algorithm');
    await expectRefused('not-a-token', 'malformed-token');
  });

  test("a token naming another user's subscription", async () => {
    const bobs = await newSub('bob');
    // signed with the right key and a grant row, but alice's: only a stolen key could do this
    const { token } = await forgedToken({ user: 'alice', subscriptions: [bobs.id] });
    await expectRefused(token, 'subscription-not-found');
  });

  test('a grant revoked in the database (as the admin CLI does)', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).jti;
    await stack.query(`UPDATE fhirsub_grant SET revoked_ms = ${Date.now()} WHERE id = ${sqlString(jti)}`);
    await expectRefused(token, 'grant-revoked');
  });

  test('a grant unknown to the database', async () => {
    const sub = await newSub();
    const token = mintToken(key.keyFile, tokenClaims({ user: 'alice', jti: crypto.randomUUID(), subscriptions: [sub.id] }));
    await expectRefused(token, 'unknown-grant');
  });

  test('a deleted subscription', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    assert.ok([200, 204].includes((await clients.alice.del(`Subscription/${sub.id}`)).status));
    await expectRefused(token, 'subscription-not-found');
  });

  test('a subscription switched off', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const res = await clients.alice.put(`Subscription/${sub.id}`, { ...sub, status: 'off' });
    assert.equal(res.status, 200, res.text);
    await expectRefused(token, 'subscription-not-active');
  });

  test('a refused bind on a connection with another binding is logged; the binding continues', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const { ws } = await bindText(token);
    const from = nt.logSize();
    ws.send('bind-with-token not-a-token');
    await nt.waitForLog(/FS20203: .*refused \(malformed-token: .*other binding\(s\) continue/, { from });
    ws.send('hello?');
    await nt.waitForLog(/FS20203: .*refused \(unsupported-message/, { from });
    assert.equal(notificationType(await nextMessage(ws, { heartbeats: true })), 'heartbeat');
    await staysOpen(ws, 500);
    await ws.close();
  });
});

describe('the JSON dialect (Medplum): OperationOutcome frames, the connection stays', () => {
  test('a refused bind answers an OperationOutcome and keeps the socket', async () => {
    const ws = await bound();
    ws.send({ type: 'bind-with-token', payload: { token: 'not-a-token' } });
    const oo = await nextMessage(ws);
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.equal(oo.issue[0].severity, 'error');
    assert.match(oo.issue[0].details.text, /^malformed-token: /);
    ws.send({ type: 'ping' });
    assert.deepEqual(await nextMessage(ws), { type: 'pong' });
    // then a good token binds on the same connection
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    ws.send({ type: 'bind-with-token', payload: { token } });
    assert.equal(notificationType(await nextMessage(ws)), 'handshake');
    await ws.close();
  });

  test('malformed and unknown JSON frames answer OperationOutcomes', async () => {
    const ws = await bound();
    for (const [frame, reason] of [
      ['{"type":"ping"', 'malformed-message'],
      ['{"type":"bind-with-token"}', 'malformed-message'],
      ['{"type":"subscribe"}', 'unsupported-message'],
      ['{}', 'unsupported-message'],
    ]) {
      ws.send(frame);
      const oo = await nextMessage(ws);
      assert.equal(oo.resourceType, 'OperationOutcome', frame);
      assert.match(oo.issue[0].details.text, new RegExp(`^${reason}: `), frame);
    }
    await staysOpen(ws, 300);
    await ws.close();
  });

  test('unbind-from-token stops the binding; unbinding a token of another connection is a no-op', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const ws = await bound();
    // Medplum unbinds its previous connection's tokens on a new socket first
    ws.send({ type: 'unbind-from-token', payload: { token } });
    ws.send({ type: 'bind-with-token', payload: { token } });
    assert.equal(notificationType(await nextMessage(ws)), 'handshake');
    ws.send({ type: 'unbind-from-token', payload: { token } });
    await sleep(300);
    await record(sub.id);
    // no event, no heartbeat: nothing is bound any more (BindTimeout applies)
    await assert.rejects(nextMessage(ws, { heartbeats: true, timeoutMs: 2000 }), /no websocket message/);
    assert.deepEqual(await closed(ws, (BIND_TIMEOUT + 5) * 1000), { code: 1008, reason: 'no-binding' });
  });

  test('text unbind-from-token works too, and an expired token can still be unbound', async () => {
    const a = await newSub();
    const b = await newSub();
    const expired = await forgedToken({ subscriptions: [a.id], lifetime: 1 });
    const good = await tokenFor('alice', b.id);
    const { ws } = await bindText(good.token);
    let from = nt.logSize();
    ws.send(`unbind-from-token ${good.token}`);
    await nt.waitForLog(/FS20208: .*unbind of grant .*: 1 binding\(s\) removed/, { from });
    await sleep(2100);
    from = nt.logSize();
    ws.send(`unbind-from-token ${expired.token}`);
    await nt.waitForLog(new RegExp(`FS20208: .*unbind of grant ${expired.jti}: 0 binding`), { from });
    assert.doesNotMatch(nt.log(from), /FS20207/);
    await staysOpen(ws, 300);
    await ws.close();
  });
});

describe('malformed and oversized frames', () => {
  test('text the notifier does not serve, on an unbound connection: 1008 unsupported-message', async () => {
    const ws = await bound();
    ws.send('bind 123');
    assert.deepEqual(await closed(ws), { code: 1008, reason: 'unsupported-message' });
  });

  test('bind-with-token without a token: 1008 malformed-message', async () => {
    const ws = await bound();
    ws.send('bind-with-token   ');
    assert.deepEqual(await closed(ws), { code: 1008, reason: 'malformed-message' });
  });

  test('a binary frame: 1003', async () => {
    const ws = await bound();
    ws.socket.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.deepEqual(await closed(ws), { code: 1003, reason: 'binary-not-supported' });
  });

  test('a message above MaxMessageSize (also in fragments): 1009', async () => {
    const ws = await bound();
    // One byte above the default 16384: nothing is left unread when the notifier closes.
    ws.send(`bind-with-token ${'x'.repeat(16_384 - 'bind-with-token '.length + 1)}`);
    assert.deepEqual(await closed(ws), { code: 1009, reason: 'message-too-big' });
    // Fragments that reach the limit exactly, then one that crosses it and nothing after:
    // data still arriving when the notifier closes would reset the TCP connection and
    // could swallow its close frame (1006 instead of 1009).
    const frag = await bound();
    for (let i = 0; i < 4; i++) frag.socket.send('y'.repeat(4096), { fin: false });
    frag.socket.send('y'.repeat(100), { fin: false });
    assert.deepEqual(await closed(frag), { code: 1009, reason: 'message-too-big' });
  });

  test('a fragmented bind is reassembled', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const ws = await bound();
    const text = `bind-with-token ${token}`;
    ws.socket.send(text.slice(0, 10), { fin: false });
    ws.socket.send(text.slice(10, 50), { fin: false });
    ws.socket.send(text.slice(50), { fin: true });
    assert.equal(notificationType(await nextMessage(ws)), 'handshake');
    await ws.close();
  });

  test('a connection that never binds is closed after BindTimeout: 1008 no-binding', async () => {
    const ws = await bound();
    const started = Date.now();
    assert.deepEqual(await closed(ws, (BIND_TIMEOUT + 5) * 1000), { code: 1008, reason: 'no-binding' });
    assert.ok(Date.now() - started >= (BIND_TIMEOUT - 1) * 1000);
  });

  test('upgrades on another path are refused', async () => {
    await assert.rejects(connectWs(`ws://127.0.0.1:${nt.port}/ws/other`), /websocket|Unexpected|socket hang up|closed/i);
  });
});

// ---- lifetimes ----------------------------------------------------------------------------

describe('renewal, expiry, revocation', () => {
  test('a renewal on the same connection before expiry continues seamlessly', async () => {
    const sub = await newSub();
    const short = await forgedToken({ subscriptions: [sub.id], lifetime: 3 });
    const ws = await bound();
    ws.send(`bind-with-token ${short.token}`);
    assert.equal(notificationType(await nextMessage(ws)), 'handshake');
    await record(sub.id);
    assert.deepEqual(eventNumbers(await nextMessage(ws)), [1]);
    const renewed = await tokenFor('alice', sub.id);
    ws.send(`bind-with-token ${renewed.token}`);
    // a handshake for the renewal too, with the count so far
    const hs = await nextMessage(ws);
    assert.equal(notificationType(hs), 'handshake');
    assert.equal(backportParam(hs, 'events-since-subscription-start').valueString, '1');
    await record(sub.id);
    assert.deepEqual(eventNumbers(await nextMessage(ws)), [2]);
    // past the first token's expiry: still bound, heartbeats keep coming
    await sleep(3500);
    assert.equal(ws.closeInfo(), null);
    await record(sub.id);
    let m;
    do m = await nextMessage(ws, { heartbeats: true });
    while (notificationType(m) === 'heartbeat');
    assert.deepEqual(eventNumbers(m), [3], 'no event lost or repeated across the renewal');
    await ws.close();
  });

  test("when a connection's last binding expires it is closed: 1008 token-expired", async () => {
    const sub = await newSub();
    const { token } = await forgedToken({ subscriptions: [sub.id], lifetime: 2 });
    const { ws } = await bindText(token);
    assert.deepEqual(await closed(ws, 5000), { code: 1008, reason: 'token-expired' });
  });

  test('a binding that expires while another continues: the connection stays', async () => {
    const a = await newSub();
    const b = await newSub();
    const short = await forgedToken({ subscriptions: [a.id], lifetime: 2 });
    const long = await tokenFor('alice', b.id);
    const ws = await bound();
    ws.send(`bind-with-token ${short.token}`);
    ws.send(`bind-with-token ${long.token}`);
    await nextMessage(ws);
    await nextMessage(ws);
    await sleep(2500);
    assert.equal(ws.closeInfo(), null);
    await drain(ws);
    // from now on only b's heartbeats
    for (let i = 0; i < 2; i++) {
      const hb = await nextMessage(ws, { heartbeats: true });
      assert.equal(subscriptionRef(hb), `${stack.fhirUrl}/Subscription/${b.id}`);
    }
    await ws.close();
  });

  test('a grant revoked while bound ends the binding within RevalidateInterval', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    const jti = JSON.parse(Buffer.from(token.split('.')[1], 'base64url')).jti;
    const text = await bindText(token);
    const json = await bound();
    json.send({ type: 'bind-with-token', payload: { token } });
    assert.equal(notificationType(await nextMessage(json)), 'handshake');
    await stack.query(`UPDATE fhirsub_grant SET revoked_ms = ${Date.now()} WHERE id = ${sqlString(jti)}`);
    assert.deepEqual(await closed(text.ws, (REVALIDATE + 5) * 1000), { code: 1008, reason: 'grant-revoked' });
    // the JSON client hears why before the close
    const oo = await nextMessage(json, { timeoutMs: (REVALIDATE + 5) * 1000 });
    assert.equal(oo.resourceType, 'OperationOutcome');
    assert.match(oo.issue[0].details.text, /^grant-revoked: /);
    assert.deepEqual(await closed(json), { code: 1008, reason: 'grant-revoked' });
  });

  test('a heartbeat period set while bound starts heartbeats within RevalidateInterval; removing it stops them', async () => {
    const quiet = backportBody({ heartbeat: null, content: 'id-only' });
    const sub = await newSub('alice', quiet);
    const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
    await assert.rejects(nextMessage(ws, { heartbeats: true, timeoutMs: (REVALIDATE + 1) * 1000 }), /no websocket message/);
    const put = (body) => clients.alice.put(`Subscription/${sub.id}`, { ...body, id: sub.id });
    assert.equal((await put(backportBody({ heartbeat: HEARTBEAT, content: 'id-only' }))).status, 200);
    for (let i = 0; i < 2; i++) {
      const hb = await nextMessage(ws, { heartbeats: true, timeoutMs: (REVALIDATE + HEARTBEAT + 3) * 1000 });
      assert.equal(notificationType(hb), 'heartbeat');
      assert.equal(subscriptionRef(hb), `${stack.fhirUrl}/Subscription/${sub.id}`);
    }
    assert.equal((await put(quiet)).status, 200);
    await sleep((REVALIDATE + HEARTBEAT + 1) * 1000); // the change is seen; one last heartbeat may still come
    await drain(ws);
    await assert.rejects(nextMessage(ws, { heartbeats: true, timeoutMs: (HEARTBEAT + 1) * 1000 }), /no websocket message/);
    await ws.close();
  });

  test('a subscription deleted or switched off while bound ends its binding', async () => {
    const gone = await newSub();
    const off = await newSub();
    const a = await bindText((await tokenFor('alice', gone.id)).token);
    const b = await bindText((await tokenFor('alice', off.id)).token);
    await clients.alice.del(`Subscription/${gone.id}`);
    assert.equal((await clients.alice.put(`Subscription/${off.id}`, { ...off, status: 'off' })).status, 200);
    assert.deepEqual(await closed(a.ws, (REVALIDATE + 5) * 1000), { code: 1008, reason: 'subscription-deleted' });
    assert.deepEqual(await closed(b.ws, (REVALIDATE + 5) * 1000), { code: 1008, reason: 'subscription-off' });
  });
});

// ---- delivery -------------------------------------------------------------------------------

describe('event delivery', () => {
  test('handshake reports N, live delivery continues at N+1, in order, once per binding', async () => {
    const sub = await newSub();
    await recordEvent(stack, sub.id);
    await recordEvent(stack, sub.id);
    const first = await bindText((await tokenFor('alice', sub.id)).token);
    assert.equal(backportParam(first.handshake, 'events-since-subscription-start').valueString, '2');
    for (let i = 0; i < 3; i++) await record(sub.id, { id: `enc-${i}` });
    const got = [];
    // backport-max-count 20: events pending together may share a Bundle
    while (got.length < 3) got.push(...eventNumbers(await nextMessage(first.ws)));
    assert.deepEqual(got, [3, 4, 5]);

    const second = await bindText((await tokenFor('alice', sub.id)).token);
    assert.equal(backportParam(second.handshake, 'events-since-subscription-start').valueString, '5');
    await record(sub.id, { id: 'enc-last' });
    assert.deepEqual(eventNumbers(await nextMessage(first.ws)), [6]);
    assert.deepEqual(eventNumbers(await nextMessage(second.ws)), [6]);
    // a wake-up for everything rescans: nothing is sent twice
    await wake();
    if (stack.db === 'pgsql') await stack.query("SELECT pg_notify('fhirsub_event', '')");
    await assert.rejects(nextMessage(first.ws, { timeoutMs: 1500 }), /no websocket message/);
    await assert.rejects(nextMessage(second.ws, { timeoutMs: 500 }), /no websocket message/);
    await first.ws.close();
    await second.ws.close();
  });

  test('an event-notification in the backport id-only shape', async () => {
    const sub = await newSub();
    const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
    await record(sub.id, { resourceType: 'Encounter', id: 'enc-9', interaction: 'update' });
    const n = await nextMessage(ws);
    assert.equal(n.type, 'history');
    assert.equal(notificationType(n), 'event-notification');
    assert.equal(backportParam(n, 'events-since-subscription-start').valueString, '1');
    const ne = backportParam(n, 'notification-event');
    assert.equal(ne.part.find((p) => p.name === 'focus').valueReference.reference, `${stack.fhirUrl}/Encounter/enc-9`);
    assert.equal(n.entry.length, 2);
    assert.equal(n.entry[1].fullUrl, `${stack.fhirUrl}/Encounter/enc-9`);
    assert.equal(n.entry[1].resource, undefined, 'id-only carries no resource');
    assert.deepEqual(n.entry[1].request, { method: 'PUT', url: 'Encounter/enc-9' });
    assert.deepEqual(n.entry[1].response, { status: '200' });
    await ws.close();
  });

  test('a wake-up brings events at once (UDP on SQLite, NOTIFY on PostgreSQL), far below PollInterval', async () => {
    const sub = await newSub();
    const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
    const started = Date.now();
    await record(sub.id);
    assert.deepEqual(eventNumbers(await nextMessage(ws, { timeoutMs: 5000 })), [1]);
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    await ws.close();
  });

  test('many events in one go arrive complete and in order (several scan batches)', async () => {
    const sub = await newSub();
    const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
    const total = 250;
    const batch = [];
    for (let i = 0; i < total; i++) batch.push(recordEvent(stack, sub.id, { id: `e${i}` }));
    for (const p of batch) await p;
    await wake(sub.id);
    if (stack.db === 'pgsql') await stack.query(`SELECT pg_notify('fhirsub_event', ${sqlString(sub.id)})`);
    const got = [];
    while (got.length < total) got.push(...eventNumbers(await nextMessage(ws)));
    assert.deepEqual(got, Array.from({ length: total }, (_, i) => i + 1));
    await ws.close();
  });

  test('max count: events already pending share Bundles of at most maxCount, in order; unset = one each', async () => {
    // five events committed in one transaction, one wake-up: one scan finds all five
    const five = async (sub) => {
      const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
      await recordEvents(stack, sub.id, 5, { size: 10 }); // pg_notify inside on PostgreSQL
      await wake(sub.id);
      return ws;
    };
    const three = await newSub('alice', backportBody({ heartbeat: 60, content: 'full-resource', maxCount: 3 }));
    let ws = await five(three);
    const a = await nextMessage(ws);
    assert.deepEqual(eventNumbers(a), [1, 2, 3]);
    // events-since-subscription-start = the highest number carried
    assert.equal(backportParam(a, 'events-since-subscription-start').valueString, '3');
    assert.deepEqual(a.entry.slice(1).map((e) => e.resource.id), ['big-1', 'big-2', 'big-3']);
    const b = await nextMessage(ws);
    assert.deepEqual(eventNumbers(b), [4, 5]);
    assert.equal(backportParam(b, 'events-since-subscription-start').valueString, '5');
    assert.equal(b.entry.length, 3);
    await assert.rejects(nextMessage(ws, { timeoutMs: 1000 }), /no websocket message/);
    await ws.close();

    const unset = await newSub('alice', backportBody({ heartbeat: 60, maxCount: null }));
    ws = await five(unset);
    for (let i = 1; i <= 5; i++) assert.deepEqual(eventNumbers(await nextMessage(ws)), [i]);
    await ws.close();

    const r5 = await createSub(clientsR5.alice, r5Body({ heartbeatPeriod: 60, content: 'id-only', maxCount: 2 }));
    const res = await clientsR5.alice.get(`Subscription/${r5.id}/$get-ws-binding-token`);
    ({ ws } = await bindText(param(res.body, 'token').valueString));
    await recordEvents(stack, r5.id, 3, { size: 10 });
    await wake(r5.id);
    const sizes = [];
    for (const want of ['2', '3']) {
      const n = await nextMessage(ws);
      assert.equal(statusResource(n).eventsSinceSubscriptionStart, want);
      sizes.push(eventNumbers(n));
    }
    assert.deepEqual(sizes, [[1, 2], [3]]);
    await ws.close();
  });

  test('max count with bindings at different cursors: a Bundle never spans a cursor, nothing twice', async () => {
    const sub = await newSub('alice', backportBody({ heartbeat: 60, maxCount: 3 }));
    const a = await bindText((await tokenFor('alice', sub.id)).token);
    // two events the notifier is not told about (PollInterval 30): A's cursor stays at 0
    await recordEvents(stack, sub.id, 2, { size: 10, notify: false });
    const b = await bindText((await tokenFor('alice', sub.id)).token);
    assert.equal(backportParam(b.handshake, 'events-since-subscription-start').valueString, '2');
    await recordEvents(stack, sub.id, 3, { size: 10 });
    await wake(sub.id);
    // A: [1, 2] (cut at B's cursor 2), then [3, 4, 5]; B only [3, 4, 5]
    assert.deepEqual(eventNumbers(await nextMessage(a.ws)), [1, 2]);
    assert.deepEqual(eventNumbers(await nextMessage(a.ws)), [3, 4, 5]);
    assert.deepEqual(eventNumbers(await nextMessage(b.ws)), [3, 4, 5]);
    await assert.rejects(nextMessage(a.ws, { timeoutMs: 1000 }), /no websocket message/);
    await assert.rejects(nextMessage(b.ws, { timeoutMs: 200 }), /no websocket message/);
    await a.ws.close();
    await b.ws.close();
  });

  test('the database keeps the status: last delivery, events since start ($status)', async () => {
    const sub = await newSub();
    const { ws } = await bindText((await tokenFor('alice', sub.id)).token);
    const before = Date.now();
    await record(sub.id);
    await nextMessage(ws);
    await waitFor(async () => {
      const [[ms]] = await stack.query(`SELECT last_delivery_ms FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(sub.id)}`);
      return Number(ms) >= before - 1000;
    }, { what: 'last_delivery_ms', timeoutMs: 5000 });
    const [[bound]] = await stack.query(`SELECT last_bound_ms FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(sub.id)}`);
    assert.ok(Number(bound) > 0, 'last_bound_ms is set while bound');
    const res = await clients.alice.get(`Subscription/${sub.id}/$status`);
    assert.equal(res.status, 200, res.text);
    const status = res.body.entry[0].resource;
    assert.equal(status.parameter.find((p) => p.name === 'events-since-subscription-start').valueString, '1');
    assert.equal(status.parameter.find((p) => p.name === 'status').valueCode, 'active');
    await ws.close();
  });
});

// ---- misbehaving clients ----------------------------------------------------------------------

/** n abrupt clients against port, `concurrency` at a time, in four flavours (see below). */
async function abuse(port, token, n, { concurrency = 16 } = {}) {
  let next = 0;
  const one = async (k) => {
    const kind = k % 4;
    if (kind === 3) {
      // an upgrade request cut in the middle of its headers
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      await new Promise((resolve) => s.once('connect', resolve).once('error', resolve));
      s.write(`GET ${WS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr`);
      s.destroy();
      return;
    }
    let s;
    try {
      s = await rawWsConnect(port);
    } catch {
      return; // refused while at MaxConnections: fine
    }
    // 0: gone right after the upgrade; 1: gone in the middle of a frame; 2: gone right after a bind
    if (kind === 1) s.write(wsFrame('bind-with-token abc', { declaredLength: 100 }).subarray(0, 12));
    if (kind === 2) s.write(wsFrame(`bind-with-token ${token}`));
    if (k % 2 && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
    else s.destroy();
  };
  const workers = Array.from({ length: concurrency }, async () => {
    while (next < n) await one(next++);
  });
  await Promise.all(workers);
}

describe('backpressure and misbehaving clients', () => {
  let nt2;
  before(async () => {
    nt2 = await startNotifier({
      stack,
      keyFile: key.keyFile,
      config: { SendQueueMessages: 16, SendQueueBytes: 1048576, SlowClientTimeout: 2, BindTimeout: BIND_TIMEOUT, PollInterval: 0.5 },
    });
  });
  after(async () => {
    const log = nt2?.log() ?? '';
    await nt2?.stop();
    assert.deepEqual(notifierProblems(log, [/FS20305: .* too slow/]), []);
  });

  test('a client that stops reading is cut off (log line, subscription in error); others go on', async () => {
    const slowSub = await newSub('alice', backportBody({ heartbeat: 60, content: 'full-resource' }));
    const fastSub = await newSub('alice', backportBody({ heartbeat: 60, content: 'full-resource' }));
    const slow = await rawWsConnect(nt2.port);
    slow.write(wsFrame(`bind-with-token ${(await tokenFor('alice', slowSub.id)).token}`));
    const polite = await bindText((await tokenFor('alice', fastSub.id)).token, { url: nt2.url });
    await waitFor(async () => {
      const [[t]] = await stack.query(`SELECT last_bound_ms FROM fhirsub_sub_counter WHERE subscription_id = ${sqlString(slowSub.id)}`);
      return Number(t) > 0;
    }, { what: 'the slow client bound' });
    const from = nt2.logSize();
    // ~26 MB for a client that reads nothing: kernel buffers fill, then the bounded queue
    await recordEvents(stack, slowSub.id, 400, { size: 65536 });
    await recordEvents(stack, fastSub.id, 50, { size: 2000 });
    await nt2.waitForLog(/FS20305: .* too slow: its send queue stayed full/, { from, timeoutMs: 30_000 });
    const got = [];
    while (got.length < 50) got.push(...eventNumbers(await nextMessage(polite.ws)));
    assert.deepEqual(got, Array.from({ length: 50 }, (_, i) => i + 1));
    // the slow socket is closed by the server (after what it will still read)
    const gone = new Promise((resolve) => slow.once('close', resolve));
    slow.on('data', () => {});
    slow.resume();
    await Promise.race([gone, sleep(20_000).then(() => assert.fail('the slow client was not disconnected'))]);
    await waitFor(async () => {
      const [[status, error]] = await stack.query(`SELECT status, error FROM fhirsub_subscription WHERE id = ${sqlString(slowSub.id)}`);
      return status === 'error' && /did not keep up/.test(error);
    }, { what: 'the subscription in error' });
    // binding again is the way back to active
    const again = await bindText((await tokenFor('alice', slowSub.id)).token, { url: nt2.url });
    assert.equal(backportParam(again.handshake, 'status').valueCode, 'active');
    const [[status]] = await stack.query(`SELECT status FROM fhirsub_subscription WHERE id = ${sqlString(slowSub.id)}`);
    assert.equal(status, 'active');
    await again.ws.close();
    await polite.ws.close();
  });

  test('a flooding client slows down itself only', async () => {
    const flood = await rawWsConnect(nt2.port);
    const ping = wsFrame('{"type":"ping"}');
    flood.write(Buffer.concat(Array.from({ length: 20_000 }, () => ping)));
    const sub = await newSub();
    const started = Date.now();
    const other = await bindText((await tokenFor('alice', sub.id)).token, { url: nt2.url });
    assert.equal(notificationType(other.handshake), 'handshake');
    assert.ok(Date.now() - started < 3000, `a bind beside the flood took ${Date.now() - started} ms`);
    // the flooder gets pongs once it reads (those that found its queue full were dropped)
    let pongs = 0;
    flood.on('data', (d) => (pongs += (d.toString('latin1').match(/"pong"/g) ?? []).length));
    flood.resume();
    await waitFor(() => pongs > 100, { what: 'pongs for the flooder', timeoutMs: 20_000 });
    flood.destroy();
    await other.ws.close();
  });

  test('1,000 abrupt connects and aborts: RSS stays flat, the notifier keeps serving', async () => {
    const sub = await newSub();
    const { token } = await tokenFor('alice', sub.id);
    await abuse(nt2.port, token, 100);
    await sleep(1500);
    const rss100 = nt2.rss();
    await abuse(nt2.port, token, 900);
    await sleep(1500);
    const rss1000 = nt2.rss();
    const grown = rss1000 - rss100;
    console.log(`# notifier RSS after 100 cycles ${rss100} KiB, after 1000 ${rss1000} KiB (${grown >= 0 ? '+' : ''}${grown} KiB)`);
    assert.ok(grown < 3 * 1024, `RSS grew by ${grown} KiB between 100 and 1000 cycles`);
    const after = await bindText(token, { url: nt2.url });
    assert.equal(notificationType(after.handshake), 'handshake');
    await record(sub.id);
    assert.deepEqual(eventNumbers(await nextMessage(after.ws)), [1]);
    await after.ws.close();
  });
});

describe('LeakSanitizer run of the connect/abort test', { skip: !fs.existsSync(NOTIFIER_LSAN_BIN) && 'notifier/fhirsub-notifier-lsan not built (make check builds it)' }, () => {
  test('abrupt clients, binds, events, shutdown: no leak reported', async () => {
    const lsan = await startNotifier({
      stack,
      keyFile: key.keyFile,
      bin: NOTIFIER_LSAN_BIN,
      config: { BindTimeout: BIND_TIMEOUT, PollInterval: 0.5 },
      lsanSuppressions: path.resolve('../../notifier/lsan.supp'),
    });
    try {
      const sub = await newSub();
      const { token } = await tokenFor('alice', sub.id);
      await abuse(lsan.port, token, 1000);
      const { ws } = await bindText(token, { url: lsan.url });
      await recordEvent(stack, sub.id);
      assert.deepEqual(eventNumbers(await nextMessage(ws)), [1]);
      // left open on purpose: the shutdown closes it
    } finally {
      const log = lsan.log();
      const exit = await lsan.stop();
      const full = `${log}${lsan.log(log.length)}`;
      assert.doesNotMatch(full, /LeakSanitizer|ERROR: /, full.slice(-4000));
      assert.deepEqual(exit, { code: 0, signal: null }, full.slice(-4000));
    }
  });
});

// ---- shapes, polling, TLS, configuration, shutdown -----------------------------------------------

describe('the other shapes and the polling fallback', () => {
  test('an R5 subscription gets subscription-notification Bundles with SubscriptionStatus', async () => {
    const sub = await createSub(clientsR5.alice, r5Body({ heartbeatPeriod: 60, content: 'full-resource' }));
    const res = await clientsR5.alice.get(`Subscription/${sub.id}/$get-ws-binding-token`);
    assert.equal(res.status, 200, res.text);
    const { ws, handshake } = await bindText(param(res.body, 'token').valueString);
    assert.equal(handshake.type, 'subscription-notification');
    const st = statusResource(handshake);
    assert.equal(st.resourceType, 'SubscriptionStatus');
    assert.equal(st.type, 'handshake');
    assert.equal(st.eventsSinceSubscriptionStart, '0');
    assert.equal(st.subscription.reference, `${stack.httpd.baseUrl}${R5_PATH}/Subscription/${sub.id}`);
    await record(sub.id, { resourceType: 'Encounter', id: 'r5-enc', interaction: 'create' });
    const n = await nextMessage(ws);
    assert.equal(statusResource(n).type, 'event-notification');
    assert.equal(statusResource(n).notificationEvent[0].eventNumber, '1');
    assert.deepEqual(n.entry[1].resource, { resourceType: 'Encounter', id: 'r5-enc' });
    assert.deepEqual(n.entry[1].request, { method: 'POST', url: 'Encounter' });
    await ws.close();
  });

  test('a classic-criteria subscription gets the shape Medplum reads (relative references)', async () => {
    const sub = await createSub(clients.alice, classicBody({ criteria: 'Encounter?status=finished' }));
    const { ws, handshake } = await bindText((await tokenFor('alice', sub.id)).token);
    assert.equal(handshake.type, 'history');
    assert.equal(statusResource(handshake).resourceType, 'SubscriptionStatus');
    assert.equal(statusResource(handshake).subscription.reference, `Subscription/${sub.id}`);
    await record(sub.id, { id: 'classic-1' });
    const n = await nextMessage(ws);
    assert.equal(statusResource(n).notificationEvent[0].focus.reference, 'Encounter/classic-1');
    assert.equal(n.entry[1].resource.id, 'classic-1');
    await ws.close();
  });

  test('without any wake-up, polling (PollInterval) delivers the events', async () => {
    const poller = await startNotifier({ stack, keyFile: key.keyFile, config: { PollInterval: 0.5 } });
    try {
      const sub = await newSub();
      const { ws } = await bindText((await tokenFor('alice', sub.id)).token, { url: poller.url });
      await recordEvent(stack, sub.id); // no NOTIFY, no datagram
      assert.deepEqual(eventNumbers(await nextMessage(ws, { timeoutMs: 5000 })), [1]);
      await ws.close();
    } finally {
      await poller.stop();
    }
  });
});

describe('TLS, configuration checks, shutdown', () => {
  test('wss: the same protocol over TLS with the configured certificate', async () => {
    const dir = makeTempDir('fhirsub-tls-');
    const cert = path.join(dir, 'cert.pem');
    const keyPem = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPem, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    fs.chmodSync(keyPem, 0o644);
    const tls = await startNotifier({ stack, keyFile: key.keyFile, config: { TLSCertificate: cert, TLSKey: keyPem } });
    try {
      const sub = await newSub();
      const { token } = await tokenFor('alice', sub.id);
      const ws = await new Promise((resolve, reject) => {
        const socket = new WebSocket(tls.url.replace('ws://', 'wss://'), { rejectUnauthorized: false });
        socket.once('open', () => resolve(socket));
        socket.once('error', reject);
      });
      const first = new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));
      ws.send(`bind-with-token ${token}`);
      assert.equal(notificationType(await first), 'handshake');
      ws.terminate();
      // plain ws is not served on the TLS port
      await assert.rejects(connectWs(tls.url, { timeoutMs: 3000 }));
    } finally {
      await tls.stop();
      removeDir(dir);
    }
  });

  test('bad configurations are refused at startup with a clear message', async () => {
    const dir = makeTempDir('fhirsub-badconf-');
    const shortKey = path.join(dir, 'short.key');
    fs.writeFileSync(shortKey, 'too-short');
    const cases = [
      [['-o', 'DBDriver=sqlite3', '-o', 'DBParams=/x', '-o', `TokenKey=HS256 ${shortKey}`], /holds 9 bytes; HS256 needs at least 32/],
      [['-o', 'DBDriver=sqlite3', '-o', 'DBParams=/x', '-o', `TokenKey=none ${key.keyFile}`], /unknown algorithm 'none'/],
      [['-o', 'DBDriver=oracle'], /DBDriver 'oracle': expected sqlite3 or pgsql/],
      [['-o', 'DBDriver=sqlite3', '-o', 'DBParams=/x', '-o', `TokenKey=HS256 ${key.keyFile}`, '-o', 'ExpireUnbound=10', '-o', 'RevalidateInterval=30'], /ExpireUnbound must be 0 or at least 3 x RevalidateInterval/],
      [['-o', 'Colour=blue'], /unknown key Colour/],
      [['-o', 'EventRetention=-1'], /EventRetention '-1': expected seconds \(0 = keep forever\)/],
      [['-o', 'EventRetentionCount=many'], /EventRetentionCount 'many': expected 0-1000000000/],
    ];
    try {
      for (const [args, message] of cases) {
        let err;
        try {
          execFileSync(path.resolve('../../notifier/fhirsub-notifier'), ['-c', '/dev/null', ...args], { stdio: 'pipe' });
        } catch (e) {
          err = e;
        }
        assert.ok(err, `accepted: ${args.join(' ')}`);
        assert.equal(err.status, 2);
        assert.match(err.stderr.toString(), message);
      }
      const ok = execFileSync(path.resolve('../../notifier/fhirsub-notifier'), ['-c', nt.configFile, '-t'], { encoding: 'utf8' });
      assert.match(ok, /configuration OK/);
    } finally {
      removeDir(dir);
    }
  });

  test('RFC 6455 pings keep idle connections alive; a peer that never answers is dropped', async () => {
    const pinger = await startNotifier({ stack, keyFile: key.keyFile, config: { PingInterval: 1, PingTimeout: 1 } });
    try {
      const polite = await bound(pinger.url);
      let pings = 0;
      polite.socket.on('ping', () => ++pings); // the ws package answers with a pong itself
      const mute = await rawWsConnect(pinger.port);
      const muteClosed = new Promise((resolve) => mute.once('close', resolve));
      mute.on('data', () => {}); // reads, never answers a ping
      mute.resume();
      await Promise.race([muteClosed, sleep(10_000).then(() => assert.fail('the mute peer was not dropped'))]);
      await sleep(1000);
      assert.ok(pings >= 2, `${pings} pings`);
      assert.equal(polite.closeInfo(), null, 'the answering client stays');
      await polite.close();
    } finally {
      await pinger.stop();
    }
  });

  test('SIGTERM: every client gets 1001 server-shutdown, the process exits 0', async () => {
    const own = await startNotifier({ stack, keyFile: key.keyFile });
    const sub = await newSub();
    const a = await bindText((await tokenFor('alice', sub.id)).token, { url: own.url });
    const b = await bound(own.url);
    const exit = await own.stop();
    assert.deepEqual(await closed(a.ws), { code: 1001, reason: 'server-shutdown' });
    assert.deepEqual(await closed(b), { code: 1001, reason: 'server-shutdown' });
    assert.deepEqual(exit, { code: 0, signal: null });
  });
});
