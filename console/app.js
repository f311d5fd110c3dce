// mod_fhirsub console: the whole websocket subscription loop in one page, no framework.
// 1. read the topics of a FHIR base, 2. create a Subscription (R4 backport or R5 shape),
// 3. ask $get-ws-binding-token and bind on the websocket it names, 4. write a resource
// through the same base and watch handshake, heartbeat and event notifications arrive.
'use strict';

const FHIR_JSON = 'application/fhir+json';
const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const TOPIC_EXT = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const CHANNEL_TYPES = 'http://terminology.hl7.org/CodeSystem/subscription-channel-type';
// SubscriptionTopic elements that repeat (the Basic form carries one extension per value).
const REPEATING = new Set(['resourceTrigger', 'canFilterBy', 'notificationShape', 'derivedFrom',
  'supportedInteraction', 'comparator', 'modifier', 'include', 'revInclude']);

const state = { base: '', version: 'R4', topics: [], sub: null, token: null, ws: null };
const $ = (id) => document.getElementById(id);

// ---- small helpers ----------------------------------------------------------------------

function say(id, text, kind = 'info') {
  const el = $(id);
  el.textContent = text;
  el.dataset.kind = kind;
}

function fail(id, err) {
  say(id, err.message || String(err), 'error');
}

function outcomeText(body) {
  const issue = body && body.resourceType === 'OperationOutcome' && body.issue && body.issue[0];
  if (!issue) return '';
  return issue.diagnostics || (issue.details && issue.details.text) || issue.code || '';
}

// Parsed JSON, or null for anything else (an empty body, a text frame).
function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// A FHIR call under the current base; rejects with the OperationOutcome's text on errors.
async function fhir(method, path, body) {
  const init = { method, headers: { Accept: FHIR_JSON } };
  if (body !== undefined) {
    init.headers['Content-Type'] = FHIR_JSON;
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${state.base}/${path}`, init);
  const text = await res.text();
  const json = parseJson(text);
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${outcomeText(json) || text.slice(0, 200)}`);
  return json;
}

function param(parameters, name) {
  return ((parameters && parameters.parameter) || []).find((p) => p.name === name);
}

function paramValue(p) {
  if (!p) return undefined;
  const key = Object.keys(p).find((k) => k.startsWith('value'));
  return key ? p[key] : undefined;
}

// ---- 1. base, version, topics ---------------------------------------------------------------

// R4 backport or R5: the OperationDefinitions the module lists for Subscription tell it.
function versionOf(metadata) {
  const rest = (metadata && metadata.rest) || [];
  const defs = rest.flatMap((r) => r.resource || [])
    .filter((r) => r.type === 'Subscription')
    .flatMap((r) => (r.operation || []).map((o) => o.definition || ''));
  if (defs.some((d) => d.includes('subscriptions-backport'))) return 'R4';
  if (defs.some((d) => d.includes('/OperationDefinition/Subscription-'))) return 'R5';
  return String((metadata && metadata.fhirVersion) || '4').startsWith('5') ? 'R5' : 'R4';
}

// The backport IG's Basic form of a SubscriptionTopic back into the topic's own elements.
function fromExtensions(extensions, prefix) {
  const out = {};
  for (const ext of extensions || []) {
    if (!ext.url || !ext.url.startsWith(prefix)) continue;
    const name = ext.url.slice(prefix.length);
    const value = ext.extension ? fromExtensions(ext.extension, '') : paramValue(ext);
    if (REPEATING.has(name)) (out[name] = out[name] || []).push(value);
    else out[name] = value;
  }
  return out;
}

function basicToTopic(basic) {
  return { resourceType: 'SubscriptionTopic', id: basic.id, ...fromExtensions(basic.extension, TOPIC_EXT) };
}

// Topics as the backport IG serves them at R4 (Basic), else the SubscriptionTopic resource.
async function fetchTopics() {
  if (state.version === 'R4') {
    const bundle = await fhir('GET', 'Basic?code=SubscriptionTopic');
    const basics = (bundle.entry || []).map((e) => e.resource).filter((r) => r && r.resourceType === 'Basic');
    if (basics.length) return basics.map(basicToTopic);
  }
  const bundle = await fhir('GET', 'SubscriptionTopic');
  return (bundle.entry || []).map((e) => e.resource).filter((r) => r && r.url);
}

async function loadBase(event) {
  if (event) event.preventDefault();
  state.base = $('base').value.replace(/\/+$/, '');
  state.sub = null;
  state.token = null;
  ['create', 'token', 'connect'].forEach((id) => ($(id).disabled = true));
  say('base-status', 'reading the CapabilityStatement and the topics…');
  try {
    state.version = versionOf(await fhir('GET', 'metadata'));
    state.topics = await fetchTopics();
    renderTopics();
    say('base-status', `FHIR ${state.version === 'R4' ? 'R4 (Subscriptions Backport IG)' : 'R5'}: ` +
      `${state.topics.length} topic(s)`, 'ok');
    $('create').disabled = state.topics.length === 0;
  } catch (err) {
    fail('base-status', err);
  }
}

function renderTopics() {
  const select = $('topic');
  select.replaceChildren(...state.topics.map((t) => new Option(t.title || t.url, t.url)));
  renderFilters();
}

function currentTopic() {
  return state.topics.find((t) => t.url === $('topic').value);
}

function topicResource(topic) {
  const trigger = (topic && topic.resourceTrigger && topic.resourceTrigger[0]) || {};
  return String(trigger.resource || '').split('/').pop();
}

function renderFilters() {
  const topic = currentTopic();
  const fieldset = $('filters');
  fieldset.querySelectorAll('.filter').forEach((el) => el.remove());
  $('topic-description').textContent = topic ? `${topic.description || ''} (${topic.url})` : '';
  for (const f of (topic && topic.canFilterBy) || []) {
    const label = document.createElement('label');
    label.className = 'filter';
    const name = document.createElement('span');
    name.textContent = `${f.resource || topicResource(topic)}.${f.filterParameter}`;
    const input = document.createElement('input');
    input.dataset.resource = f.resource || topicResource(topic);
    input.dataset.param = f.filterParameter;
    input.placeholder = f.description || '';
    input.title = f.description || '';
    input.addEventListener('input', renderSample);
    label.append(name, input);
    fieldset.append(label);
  }
  renderSample();
}

function filledFilters() {
  return [...$('filters').querySelectorAll('input')]
    .filter((i) => i.value.trim())
    .map((i) => ({ resource: i.dataset.resource, param: i.dataset.param, value: i.value.trim() }));
}

// ---- 2. the Subscription ----------------------------------------------------------------

// A filter value in a query string: escaped, but `|`, `:`, `/` and `,` kept readable.
function queryValue(value) {
  return encodeURIComponent(value).replace(/%(7C|3A|2F|2C)/gi, (m) => decodeURIComponent(m));
}

function backportBody(topic, filters, content, heartbeat) {
  const body = {
    resourceType: 'Subscription',
    meta: { profile: [`${BACKPORT}backport-subscription`] },
    status: 'requested',
    reason: 'mod_fhirsub console',
    criteria: topic.url,
    channel: {
      type: 'websocket',
      payload: FHIR_JSON,
      _payload: { extension: [{ url: `${BACKPORT}backport-payload-content`, valueCode: content }] },
      extension: [{ url: `${BACKPORT}backport-heartbeat-period`, valueUnsignedInt: heartbeat }],
    },
  };
  if (filters.length) {
    body._criteria = {
      extension: filters.map((f) => ({
        url: `${BACKPORT}backport-filter-criteria`,
        valueString: `${f.resource}?${f.param}=${queryValue(f.value)}`,
      })),
    };
  }
  return body;
}

function r5Body(topic, filters, content, heartbeat) {
  const body = {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'mod_fhirsub console',
    topic: topic.url,
    channelType: { system: CHANNEL_TYPES, code: 'websocket' },
    contentType: FHIR_JSON,
    content,
    heartbeatPeriod: heartbeat,
  };
  if (filters.length) {
    body.filterBy = filters.map((f) => ({ resourceType: f.resource, filterParameter: f.param, value: f.value }));
  }
  return body;
}

async function createSubscription(event) {
  event.preventDefault();
  const topic = currentTopic();
  const heartbeat = Number($('heartbeat').value) || 10;
  const make = state.version === 'R5' ? r5Body : backportBody;
  say('sub-status', 'creating…');
  try {
    state.sub = await fhir('POST', 'Subscription', make(topic, filledFilters(), $('content').value, heartbeat));
    state.token = null;
    say('sub-status', `Subscription/${state.sub.id} ${state.sub.status}`, 'ok');
    $('sub-status').dataset.id = state.sub.id;
    $('token').disabled = false;
    $('connect').disabled = true;
    say('token-status', '');
  } catch (err) {
    fail('sub-status', err);
  }
}

// ---- 3. token and websocket -------------------------------------------------------------

async function getToken() {
  say('token-status', 'asking for a binding token…');
  try {
    const out = await fhir('POST', `Subscription/${state.sub.id}/$get-ws-binding-token`,
      { resourceType: 'Parameters' });
    state.token = {
      value: paramValue(param(out, 'token')),
      expires: paramValue(param(out, 'expiration')),
      url: paramValue(param(out, 'websocket-url')),
    };
    say('token-status', `token valid until ${state.token.expires}, websocket ${state.token.url}`, 'ok');
    $('connect').disabled = false;
  } catch (err) {
    fail('token-status', err);
  }
}

function connect() {
  if (state.ws) state.ws.close(1000);
  const ws = new WebSocket(state.token.url);
  state.ws = ws;
  say('ws-status', `connecting to ${state.token.url}…`);
  ws.addEventListener('open', () => {
    ws.send(`bind-with-token ${state.token.value}`);
    say('ws-status', 'connected; bind-with-token sent, waiting for the handshake…', 'ok');
    $('disconnect').disabled = false;
  });
  ws.addEventListener('message', (e) => onMessage(e.data));
  ws.addEventListener('close', (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    $('disconnect').disabled = true;
    say('ws-status', `websocket closed: ${e.code} ${e.reason || ''}`.trim(), e.code === 1000 ? 'info' : 'error');
  });
}

function disconnect() {
  if (state.ws) state.ws.close(1000);
}

// ---- notifications ----------------------------------------------------------------------

// What a notification Bundle says, from its SubscriptionStatus (R4: Parameters; R5: resource).
function summarize(bundle) {
  const status = bundle && bundle.entry && bundle.entry[0] && bundle.entry[0].resource;
  if (!status) return null;
  if (status.resourceType === 'Parameters') {
    const ref = paramValue(param(status, 'subscription'));
    return {
      type: paramValue(param(status, 'type')),
      since: paramValue(param(status, 'events-since-subscription-start')),
      subscription: ref && ref.reference,
      events: status.parameter.filter((p) => p.name === 'notification-event').map((p) => {
        const focus = paramValue(param({ parameter: p.part }, 'focus'));
        return { number: paramValue(param({ parameter: p.part }, 'event-number')), focus: focus && focus.reference };
      }),
    };
  }
  if (status.resourceType === 'SubscriptionStatus') {
    return {
      type: status.type,
      since: status.eventsSinceSubscriptionStart,
      subscription: status.subscription && status.subscription.reference,
      events: (status.notificationEvent || []).map((e) => ({ number: e.eventNumber, focus: e.focus && e.focus.reference })),
    };
  }
  return null;
}

function onMessage(data) {
  const json = parseJson(data);
  const info = summarize(json) || { type: json && json.resourceType ? json.resourceType : 'text', events: [] };
  if (info.type === 'handshake') say('ws-status', `bound: handshake for ${relative(info.subscription)}`, 'ok');
  const counter = $(`count-${info.type}`);
  if (counter) counter.textContent = String(Number(counter.textContent) + 1);
  $('log').prepend(logEntry(info, json ? JSON.stringify(json, null, 2) : String(data)));
}

// A reference under the current base, shortened to Type/id.
function relative(ref) {
  return ref && ref.startsWith(`${state.base}/`) ? ref.slice(state.base.length + 1) : ref;
}

function logEntry(info, raw) {
  const li = document.createElement('li');
  li.className = `msg ${info.type}`;
  li.dataset.type = info.type;
  const head = document.createElement('div');
  head.className = 'head';
  const time = document.createElement('time');
  time.textContent = new Date().toLocaleTimeString();
  const type = document.createElement('strong');
  type.textContent = info.type;
  const detail = document.createElement('span');
  detail.textContent = [relative(info.subscription), info.since !== undefined ? `events since start: ${info.since}` : '']
    .filter(Boolean).join(' · ');
  head.append(time, type, detail);
  li.append(head);
  for (const e of info.events) {
    const ev = document.createElement('div');
    ev.className = 'event';
    ev.dataset.focus = relative(e.focus) || '';
    ev.textContent = `event #${e.number}${e.focus ? `: ${relative(e.focus)}` : ''}`;
    li.append(ev);
  }
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  summary.textContent = 'Bundle';
  const pre = document.createElement('pre');
  pre.textContent = raw;
  details.append(summary, pre);
  li.append(details);
  return li;
}

function clearLog() {
  $('log').replaceChildren();
  document.querySelectorAll('.badge b').forEach((b) => (b.textContent = '0'));
}

// ---- 4. the sample resource -------------------------------------------------------------

function token(value) {
  const bar = value.indexOf('|');
  return bar < 0 ? { code: value } : { system: value.slice(0, bar) || undefined, code: value.slice(bar + 1) };
}

function sampleTemplate(type) {
  const tag = Math.random().toString(36).slice(2, 8);
  switch (type) {
    case 'Patient':
      return { resourceType: 'Patient', identifier: [{ system: 'http://example.org/console', value: `demo-${tag}` }],
        active: true, name: [{ family: 'Demo', given: ['Console'] }], gender: 'unknown', birthDate: '1970-01-01' };
    case 'Observation':
      return { resourceType: 'Observation', status: 'final',
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
        code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
        effectiveDateTime: new Date().toISOString(),
        valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' } };
    case 'Encounter':
      return { resourceType: 'Encounter', status: 'in-progress',
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' } };
    default:
      return { resourceType: type || 'Basic' };
  }
}

// How a search parameter's value is put into the sample so that the sample matches it.
const SETTERS = {
  identifier: (r, v) => (r.identifier = [{ system: token(v).system, value: token(v).code }]),
  code: (r, v) => (r.code = { coding: [token(v)] }),
  category: (r, v) => (r.category = [{ coding: [token(v)] }]),
  type: (r, v) => (r.type = [{ coding: [token(v)] }]),
  class: (r, v) => (r.class = token(v)),
  status: (r, v) => (r.status = v),
  subject: (r, v) => (r.subject = { reference: v }),
  patient: (r, v) => (r.subject = { reference: v.includes('/') ? v : `Patient/${v}` }),
  encounter: (r, v) => (r.encounter = { reference: v }),
  family: (r, v) => (r.name = [{ ...(r.name || [{}])[0], family: v }]),
  name: (r, v) => (r.name = [{ ...(r.name || [{}])[0], family: v }]),
  given: (r, v) => (r.name = [{ ...(r.name || [{}])[0], given: [v] }]),
  gender: (r, v) => (r.gender = v),
  birthdate: (r, v) => (r.birthDate = v),
  active: (r, v) => (r.active = v === 'true'),
  location: (r, v) => (r.location = [{ location: { reference: v } }]),
  'service-provider': (r, v) => (r.serviceProvider = { reference: v }),
  practitioner: (r, v) => (r.participant = [{ individual: { reference: v } }]),
  organization: (r, v) => (r.managingOrganization = { reference: v }),
  'general-practitioner': (r, v) => (r.generalPractitioner = [{ reference: v }]),
};

// "status=finished&x=y" of a topic's queryCriteria.current, as [param, value] pairs.
function criteriaPairs(query) {
  return String(query || '').split('&').map((part) => part.split('='))
    .filter(([k, v]) => k && v !== undefined && !k.includes(':'));
}

function buildSample(topic) {
  const type = topicResource(topic);
  const sample = sampleTemplate(type);
  const unmatched = [];
  const trigger = (topic && topic.resourceTrigger && topic.resourceTrigger[0]) || {};
  for (const [k, v] of criteriaPairs(trigger.queryCriteria && trigger.queryCriteria.current)) {
    if (SETTERS[k]) SETTERS[k](sample, decodeURIComponent(v));
  }
  for (const f of filledFilters()) {
    if (f.resource === type && SETTERS[f.param]) SETTERS[f.param](sample, f.value);
    else unmatched.push(`${f.resource}.${f.param}`);
  }
  return { sample: JSON.parse(JSON.stringify(sample)), unmatched };
}

function renderSample() {
  const topic = currentTopic();
  if (!topic) return;
  const { sample, unmatched } = buildSample(topic);
  $('sample').value = JSON.stringify(sample, null, 2);
  $('sample-hint').textContent = unmatched.length
    ? `Edit the JSON to match the filters the sample does not fill in: ${unmatched.join(', ')}.`
    : 'Matches the topic and the filters; written with POST through the FHIR base, as any client would.';
  $('write').disabled = false;
}

async function writeSample() {
  say('write-status', 'writing…');
  try {
    const resource = JSON.parse($('sample').value);
    const created = await fhir('POST', resource.resourceType, resource);
    $('write-status').dataset.ref = `${created.resourceType}/${created.id}`;
    say('write-status', `created ${created.resourceType}/${created.id}`, 'ok');
  } catch (err) {
    fail('write-status', err);
  }
}

// ---- start ------------------------------------------------------------------------------

function start() {
  const origin = window.location.origin;
  const bases = [`${origin}/fhir/R4`, `${origin}/fhir/R5`];
  $('bases').replaceChildren(...bases.map((b) => new Option(b)));
  $('base').value = new URLSearchParams(window.location.search).get('base') || bases[0];
  $('base-form').addEventListener('submit', loadBase);
  $('topic').addEventListener('change', renderFilters);
  $('sub-form').addEventListener('submit', createSubscription);
  $('token').addEventListener('click', getToken);
  $('connect').addEventListener('click', connect);
  $('disconnect').addEventListener('click', disconnect);
  $('write').addEventListener('click', writeSample);
  $('clear').addEventListener('click', clearLog);
  loadBase();
}

start();
