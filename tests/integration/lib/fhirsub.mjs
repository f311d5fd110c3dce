// Shared helpers for the mod_fhirsub integration tests: configuration of FhirSub locations,
// Subscription bodies in the three shapes, OperationOutcome / Parameters / JWT assertions,
// raw HTTP for what fetch cannot send, and the end-of-file log checks.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fhir } from './fhir.mjs';
import { assertNoCrash, basicAuthDirectives, unexpectedLogLines } from './httpd.mjs';
import { makeTempDir, removeDir, withTimeout } from './util.mjs';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const TOPICS_DIR = path.join(REPO_ROOT, 'conf/topics');

// alice and bob are the two users of the isolation tests; carol, dave and erin keep other tests'
// exact counts independent of what alice does elsewhere in the same file.
export const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', dave: 'dave-pw', erin: 'erin-pw' };

export const TOPIC = {
  encounterComplete: 'http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete',
  encounterStart: 'http://example.org/fhir/SubscriptionTopic/encounter-start',
  observationChange: 'http://example.org/fhir/SubscriptionTopic/observation-change',
  patientChange: 'http://example.org/fhir/SubscriptionTopic/patient-change',
};
export const ALL_TOPICS = Object.values(TOPIC);

const BP = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const URL = {
  backportSubscription: `${BP}backport-subscription`,
  backportStatusR4: `${BP}backport-subscription-status-r4`,
  filterCriteria: `${BP}backport-filter-criteria`,
  payloadContent: `${BP}backport-payload-content`,
  heartbeatPeriod: `${BP}backport-heartbeat-period`,
  maxCount: `${BP}backport-max-count`,
  timeout: `${BP}backport-timeout`,
  channelTypeExt: `${BP}backport-channel-type`,
  topicCanonicalExt: `${BP}capabilitystatement-subscriptiontopic-canonical`,
  backportServerCs: 'http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4',
  websocketExt: 'http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket',
  channelTypeCs: 'http://terminology.hl7.org/CodeSystem/subscription-channel-type',
  opdefR4: (code) => `http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-${code}`,
  opdefR5: (code) => `http://hl7.org/fhir/OperationDefinition/Subscription-${code}`,
};

export const FHIR_JSON_CT = /^application\/fhir\+json/;

const WHITESPACE = [0x20, 0x09, 0x0d, 0x0a];

/**
 * n random bytes that do not end in whitespace: the module drops trailing whitespace of an
 * HMAC secret file (see hmacSecret), which would make the secret's length a matter of luck.
 */
export function randomSecret(n) {
  const bytes = crypto.randomBytes(n);
  if (n && WHITESPACE.includes(bytes[n - 1])) bytes[n - 1] = 0x41;
  return bytes;
}

/** A fresh directory (removed by cleanup(), and at process exit) holding a random HMAC key. */
export function makeKeyDir({ bytes = 48 } = {}) {
  const dir = makeTempDir('fhirsub-key-');
  const keyFile = path.join(dir, 'token.key');
  fs.writeFileSync(keyFile, randomSecret(bytes), { mode: 0o600 });
  return { dir, keyFile, cleanup: () => removeDir(dir) };
}

export function wsUrlFor(port, name = 'subscriptions-r4') {
  return `ws://127.0.0.1:${port}/ws/${name}`;
}

/**
 * Directives of a FhirSub location (with basic auth unless auth: false).
 *   wsUrl, keyFile (each line left out when null); lifetime (s); version 'R4'|'R5';
 *   topics (path, default conf/topics); extra: more raw lines.
 */
export function fhirsubDirectives({ wsUrl, keyFile, lifetime = 60, version, topics = TOPICS_DIR, auth = true, extra = [] }) {
  return [
    'FhirSub On',
    ...(version ? [`FhirSubFhirVersion ${version}`] : []),
    ...(wsUrl ? [`FhirSubWebSocketURL ${wsUrl}`] : []),
    ...(keyFile ? [`FhirSubTokenKey HS256 ${keyFile}`] : []),
    ...(topics ? [`FhirSubTopic ${topics}`] : []),
    `FhirSubTokenLifetime ${lifetime}`,
    ...extra,
    ...(auth ? basicAuthDirectives('fhirsub') : []),
  ];
}

/** FHIR clients for each of USERS and an anonymous caller (anon) at a base URL. */
export function clientsFor(baseUrl) {
  const clients = { anon: fhir(baseUrl) };
  for (const [user, password] of Object.entries(USERS)) clients[user] = fhir(baseUrl, { user, password });
  return clients;
}

// ---- Subscription bodies ------------------------------------------------------------------

/** R4 backport-profile Subscription (topic canonical in criteria). */
export function backportBody({
  topic = TOPIC.encounterComplete,
  filters = ['Encounter?patient=Patient/123'],
  content = 'id-only',
  heartbeat = 60,
  maxCount = 20,
  channelType = 'websocket',
  payload = 'application/fhir+json',
  status = 'requested',
  end,
  reason = 'integration test',
} = {}) {
  const channel = { type: channelType };
  const channelExt = [];
  if (heartbeat !== null) channelExt.push({ url: URL.heartbeatPeriod, valueUnsignedInt: heartbeat });
  if (maxCount !== null) channelExt.push({ url: URL.maxCount, valuePositiveInt: maxCount });
  if (channelExt.length) channel.extension = channelExt;
  if (payload !== null) channel.payload = payload;
  if (content !== null) channel._payload = { extension: [{ url: URL.payloadContent, valueCode: content }] };
  const body = {
    resourceType: 'Subscription',
    meta: { profile: [URL.backportSubscription] },
    status,
    reason,
    criteria: topic,
    channel,
  };
  if (filters?.length) body._criteria = { extension: filters.map((f) => ({ url: URL.filterCriteria, valueString: f })) };
  if (end) body.end = end;
  return body;
}

/** R4 classic Subscription (criteria is a search), what Medplum's client sends. */
export function classicBody({ criteria = 'Observation?code=http://loinc.org|1234-5', channelType = 'websocket', status = 'active', end } = {}) {
  const body = { resourceType: 'Subscription', status, reason: 'classic', criteria, channel: { type: channelType } };
  if (end) body.end = end;
  return body;
}

/** R5 Subscription. */
export function r5Body({
  topic = TOPIC.encounterComplete,
  filterBy = [{ resourceType: 'Encounter', filterParameter: 'patient', value: 'Patient/123' }],
  code = 'websocket',
  system = URL.channelTypeCs,
  content = 'id-only',
  heartbeatPeriod = 60,
  maxCount = 10,
  contentType = 'application/fhir+json',
  status = 'requested',
} = {}) {
  const body = {
    resourceType: 'Subscription',
    status,
    topic,
    channelType: { ...(system ? { system } : {}), code },
    contentType,
  };
  if (content !== null) body.content = content;
  if (heartbeatPeriod !== null) body.heartbeatPeriod = heartbeatPeriod;
  if (maxCount !== null) body.maxCount = maxCount;
  if (filterBy?.length) body.filterBy = filterBy;
  return body;
}

/** Creates a Subscription and asserts 201; resolves to the created resource. */
export async function createSub(client, body) {
  const res = await client.post('Subscription', body);
  assert.equal(res.status, 201, `create: ${res.text}`);
  assert.equal(res.body?.resourceType, 'Subscription');
  return res.body;
}

// ---- assertions --------------------------------------------------------------------------

/**
 * Asserts an OperationOutcome error answer: status, FHIR JSON content type, one issue with
 * severity error (or fatal), and the issue code when given. Returns the issue.
 */
export function assertOutcome(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text.slice(0, 500)}`);
  assert.match(res.headers['content-type'] ?? '', FHIR_JSON_CT, `content-type of a ${status}`);
  assert.equal(res.body?.resourceType, 'OperationOutcome', res.text.slice(0, 500));
  assert.ok(Array.isArray(res.body.issue) && res.body.issue.length >= 1, res.text);
  const issue = res.body.issue[0];
  assert.ok(['error', 'fatal'].includes(issue.severity), `severity ${issue.severity}`);
  if (code) assert.equal(issue.code, code, `issue code in ${res.text}`);
  return issue;
}

/** Asserts a 4xx OperationOutcome (any 4xx status): malformed input never answers 5xx. */
export function assert4xxOutcome(res, what = '') {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: expected 4xx, got ${res.status}: ${res.text.slice(0, 300)}`);
  assert.match(res.headers['content-type'] ?? '', FHIR_JSON_CT, `${what}: content-type`);
  assert.equal(res.body?.resourceType, 'OperationOutcome', `${what}: ${res.text.slice(0, 300)}`);
}

/** The text of an issue (diagnostics or details.text). */
export function issueText(issue) {
  return `${issue?.diagnostics ?? ''} ${issue?.details?.text ?? ''}`;
}

/** All `parameter` entries named name of a Parameters resource. */
export function params(resource, name) {
  return (resource?.parameter ?? []).filter((p) => p.name === name);
}

/** The one parameter named name (asserts there is exactly one). */
export function param(resource, name) {
  const found = params(resource, name);
  assert.equal(found.length, 1, `exactly one '${name}' parameter in ${JSON.stringify(resource)}`);
  return found[0];
}

/** Decodes a compact JWS without verifying: {header, payload, signature, parts}. */
export function decodeJwt(token) {
  const parts = token.split('.');
  assert.equal(parts.length, 3, `a JWT has three parts: ${token}`);
  for (const part of parts) assert.match(part, /^[A-Za-z0-9_-]+$/, 'base64url without padding');
  const json = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: json(parts[0]), payload: json(parts[1]), signature: parts[2], parts };
}

/**
 * The HMAC secret the module uses for a key file: its bytes without trailing whitespace
 * (a secret written with `echo` ends in a newline; fs_token.c trims " \t\r\n" at the end).
 */
export function hmacSecret(keyFile) {
  const bytes = fs.readFileSync(keyFile);
  let len = bytes.length;
  while (len > 0 && WHITESPACE.includes(bytes[len - 1])) len--;
  return bytes.subarray(0, len);
}

/** Verifies an HS* JWT signature with a key file (or the secret's bytes). */
export function jwtSignatureValid(token, keyFileOrSecret, alg = 'HS256') {
  const [h, p, s] = token.split('.');
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  const secret = Buffer.isBuffer(keyFileOrSecret) ? keyFileOrSecret : hmacSecret(keyFileOrSecret);
  const mac = crypto.createHmac(hash, secret).update(`${h}.${p}`).digest('base64url');
  return mac === s;
}

/** Entries' resource ids of a searchset Bundle, sorted. */
export function bundleIds(bundle) {
  return (bundle?.entry ?? []).map((e) => e.resource?.id).sort();
}

// ---- raw HTTP ----------------------------------------------------------------------------

/**
 * Sends raw bytes (string or Buffer, or an array of chunks written in turn) to 127.0.0.1:port
 * and resolves to {status, headers, body, text, raw} once the server closes the connection
 * (send `Connection: close`). Bounded by timeoutMs.
 */
export function rawRequest(port, chunks, { timeoutMs = 15_000 } = {}) {
  const list = Array.isArray(chunks) ? chunks : [chunks];
  const done = new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const received = [];
    socket.on('data', (d) => received.push(d));
    socket.on('error', (err) => {
      // The server may close early (e.g. 413) while we still write: keep what arrived.
      if (received.length && ['EPIPE', 'ECONNRESET'].includes(err.code)) return;
      reject(err);
    });
    socket.on('close', () => resolve(parseRawResponse(Buffer.concat(received))));
    socket.on('connect', async () => {
      for (const chunk of list) {
        if (socket.destroyed) return;
        const ok = socket.write(chunk);
        if (!ok) await new Promise((r) => socket.once('drain', r).once('close', r));
      }
    });
  });
  return withTimeout(done, timeoutMs, `raw HTTP request to port ${port}`);
}

function parseRawResponse(buf) {
  const raw = buf.toString('latin1');
  const headEnd = raw.indexOf('\r\n\r\n');
  const head = headEnd >= 0 ? raw.slice(0, headEnd) : raw;
  let body = headEnd >= 0 ? buf.subarray(headEnd + 4) : Buffer.alloc(0);
  const [statusLine, ...headerLines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers = {};
  for (const line of headerLines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  const text = body.toString('utf8');
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status, headers, body: json, text, raw };
}

function dechunk(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const lineEnd = buf.indexOf('\r\n', pos);
    if (lineEnd < 0) break;
    const size = parseInt(buf.subarray(pos, lineEnd).toString('latin1'), 16);
    if (!size) break;
    out.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
    pos = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export function basicAuthHeader(user, password) {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

// ---- end of a test file ------------------------------------------------------------------

/**
 * Stops the stack, then asserts that its error log shows no crash and no [warn]/[error] line
 * outside `allow` (strings or RegExps: AH numbers of Apache, FS1nnnn of the module, FS0nnnn of
 * its core library). The log is read before stop() removes the directory.
 */
export async function stopAndCheckLog(stack, allow = []) {
  if (!stack) return;
  const log = stack.httpd?.errorLog() ?? '';
  await stack.stop();
  assertNoCrash(log);
  assert.deepEqual(unexpectedLogLines(log, allow), [], 'unexpected warnings or errors in the httpd error log');
}

/** An instant `seconds` from now, FHIR-formatted. */
export function instantIn(seconds) {
  return new Date(Date.now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

// ---- database ----------------------------------------------------------------------------

/** SQL string literal (for ids the tests made themselves or took from answers). */
export function sqlString(value) {
  return `'${String(value).replace(/'/g, "''")}'`;
}

const SUB_COLUMNS = [
  'owner', 'status', 'channel_type', 'shape', 'topic', 'criteria', 'filters', 'content', 'content_type',
  'heartbeat_period', 'max_count', 'end_ms', 'base_url', 'version_id', 'events_since_start',
];

/** The counters live in fhirsub_sub_counter (one row per subscription), the rest in fhirsub_subscription. */
const COUNTER_COLUMNS = new Set(['events_since_start', 'last_delivery_ms', 'last_bound_ms']);

/** The fhirsub_subscription row of id, with its counters, as an object of strings, or null. */
export async function subRow(stack, id) {
  const columns = SUB_COLUMNS.map((c) => (COUNTER_COLUMNS.has(c) ? `c.${c}` : `s.${c}`));
  const rows = await stack.query(`SELECT ${columns.join(', ')} FROM fhirsub_subscription s`
    + ` JOIN fhirsub_sub_counter c ON c.subscription_id = s.id WHERE s.id = ${sqlString(id)}`);
  if (!rows.length) return null;
  return Object.fromEntries(SUB_COLUMNS.map((c, i) => [c, rows[0][i]]));
}

export async function countRows(stack, table, where = '1=1') {
  const rows = await stack.query(`SELECT COUNT(*) FROM ${table} WHERE ${where}`);
  return Number(rows[0][0]);
}

/**
 * Sends raw bytes as a request body with fetch (the fhir() client JSON-stringifies anything
 * that is not a string, Buffers included). Resolves like fhir(): {status, headers, body, text}.
 */
export async function sendBytes(url, { method = 'POST', user, body, contentType = 'application/fhir+json', timeoutMs = 20_000 }) {
  const headers = { Accept: 'application/fhir+json', 'Content-Type': contentType };
  if (user) headers.Authorization = basicAuthHeader(user, USERS[user]);
  const res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), body: json, text };
}

/** A raw GET with `Connection: close` (fetch refuses to set that header). */
export function rawGet(port, urlPath, { user, headers = {} } = {}) {
  const lines = [`GET ${urlPath} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Accept: application/fhir+json'];
  if (user) lines.push(`Authorization: ${basicAuthHeader(user, USERS[user])}`);
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  lines.push('Connection: close', '', '');
  return rawRequest(port, lines.join('\r\n'));
}
