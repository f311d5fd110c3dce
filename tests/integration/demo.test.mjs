// scripts/demo and the console it serves, end to end. The demo is started as a user starts it
// (--detach, free ports, a fresh directory): real clients then run the whole loop through its
// Apache (topics, Subscription, $get-ws-binding-token, websocket bind through
// mod_proxy_wstunnel, a write through the FHIR base, the notification), headless Chromium runs
// the same loop by clicking through the console (screenshot in artifacts/), and `--stop` must
// leave no process and no port behind. Ctrl-C on a foreground demo must do the same.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import {
  demoProcesses, demoSetup, demoUrls, killLeftovers, startDetached, startForeground, stopDemo, takenPorts,
} from './lib/demo.mjs';
import { fhir } from './lib/fhir.mjs';
import { backportBody, TOPIC } from './lib/fhirsub.mjs';
import { removeDir, waitFor } from './lib/util.mjs';
import { connectWs } from './lib/ws.mjs';

const CHROMIUM = process.env.FHIRSUB_CHROMIUM || '/usr/bin/chromium';
// The machine has no network: these flags keep Chromium from waiting on it (and from a small
// /dev/shm in containers).
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const ARTIFACTS = path.join(path.dirname(new URL(import.meta.url).pathname), 'artifacts');
const LOINC = 'http://loinc.org';
const WAIT_MS = 20_000;

const uniq = (prefix) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

function param(parameters, name) {
  const p = parameters?.parameter?.find((x) => x.name === name);
  return p && p[Object.keys(p).find((k) => k.startsWith('value'))];
}

/** type, events-since-start and focus references of an R4 backport notification Bundle. */
function backportNotification(bundle) {
  const status = bundle?.entry?.[0]?.resource;
  assert.equal(status?.resourceType, 'Parameters', `not an R4 backport notification: ${JSON.stringify(bundle).slice(0, 300)}`);
  return {
    type: param(status, 'type'),
    since: param(status, 'events-since-subscription-start'),
    subscription: param(status, 'subscription')?.reference,
    focus: status.parameter.filter((p) => p.name === 'notification-event')
      .map((p) => p.part.find((x) => x.name === 'focus')?.valueReference?.reference),
  };
}

async function assertAllGone(setup) {
  // --stop returns once everything stopped; a moment's grace for the kernel to free ports.
  await waitFor(async () => demoProcesses(setup).length === 0 && (await takenPorts(setup)).length === 0,
    { what: 'the demo to be gone', timeoutMs: 5_000 }).catch(() => {});
  assert.deepEqual(demoProcesses(setup), [], 'no httpd, backend or notifier of the demo is left');
  assert.deepEqual(await takenPorts(setup), [], 'every port of the demo is free');
}

describe('scripts/demo --detach', () => {
  let setup;
  let started;
  let urls;
  let stopped = false;

  before(async () => {
    setup = await demoSetup();
    started = await startDetached(setup);
    urls = demoUrls(started.stdout);
  });

  after(async () => {
    if (!setup) return;
    if (!stopped) await stopDemo(setup);
    killLeftovers(setup);
    setup.unregister();
    removeDir(setup.dir);
  });

  test('starts on the given ports, returns 0 once every part answers and prints the URLs', async () => {
    assert.equal(started.code, 0, `scripts/demo --detach failed:\n${started.stderr}${started.stdout}`);
    assert.equal(urls.fhirBase, `http://127.0.0.1:${setup.http}/fhir/R4`);
    assert.equal(urls.wsUrl, `ws://127.0.0.1:${setup.http}/ws/subscriptions-r4`);
    assert.equal(urls.console, `http://127.0.0.1:${setup.http}/console/`);
    const processes = demoProcesses(setup);
    for (const part of ['httpd.conf', 'fhirsub-notifier', 'backend/server.mjs']) {
      assert.ok(processes.some((p) => p.cmd.includes(part)), `a ${part} process runs: ${JSON.stringify(processes)}`);
    }
    // The same checks that must find nothing after --stop find every port now.
    assert.equal((await takenPorts(setup)).length, 4, 'http, ws, backend and wake ports are in use');
    const page = await fetch(urls.console, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type'), /^text\/html/);
    assert.match(await page.text(), /mod_fhirsub console/);
  });

  test('the whole loop with real clients: topic, Subscription, token, websocket bind, write, notification', async () => {
    assert.ok(urls.fhirBase, 'the demo printed its FHIR base');
    const client = fhir(urls.fhirBase);
    const topics = await client.get('Basic?code=SubscriptionTopic');
    assert.equal(topics.status, 200, topics.text);
    const topicUrls = topics.body.entry.map((e) => e.resource.extension.find((x) => x.url.endsWith('.url'))?.valueUri);
    assert.ok(topicUrls.includes(TOPIC.observationChange), `topics: ${topicUrls}`);

    const code = uniq('demo');
    const created = await client.post('Subscription', backportBody({
      topic: TOPIC.observationChange, filters: [`Observation?code=${LOINC}|${code}`], content: 'id-only', heartbeat: 60, maxCount: null,
    }));
    assert.equal(created.status, 201, created.text);
    const subId = created.body.id;
    const tokenOut = await client.post(`Subscription/${subId}/$get-ws-binding-token`, { resourceType: 'Parameters' });
    assert.equal(tokenOut.status, 200, tokenOut.text);
    assert.equal(param(tokenOut.body, 'websocket-url'), urls.wsUrl, 'the token names the websocket behind Apache');

    const ws = await connectWs(param(tokenOut.body, 'websocket-url'));
    try {
      ws.send(`bind-with-token ${param(tokenOut.body, 'token')}`);
      const handshake = backportNotification(await ws.next({ timeoutMs: WAIT_MS }));
      assert.equal(handshake.type, 'handshake');
      assert.equal(handshake.subscription, `${urls.fhirBase}/Subscription/${subId}`);

      const observation = (c) => ({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: LOINC, code: c }] } });
      const other = await client.post('Observation', observation(uniq('other')));
      assert.equal(other.status, 201, other.text);
      const written = await client.post('Observation', observation(code));
      assert.equal(written.status, 201, written.text);

      const event = backportNotification(await ws.next({ timeoutMs: WAIT_MS }));
      assert.equal(event.type, 'event-notification');
      assert.equal(event.since, '1', 'the filtered-out write made no event');
      assert.deepEqual(event.focus, [`${urls.fhirBase}/Observation/${written.body.id}`]);
    } finally {
      await ws.close();
    }
  });

  describe('the console in headless Chromium', () => {
    let context;
    let userDataDir;

    before(async () => {
      userDataDir = fs.mkdtempSync('/tmp/fhirsub-chromium-');
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000,
        viewport: { width: 1360, height: 900 },
      });
    });

    after(async () => {
      await context?.close();
      if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    });

    /** A fresh page that records script errors. */
    async function openConsole(query = '') {
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT_MS);
      const errors = [];
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('console', (msg) => msg.type() === 'error' && errors.push(`${msg.text()} ${msg.location()?.url ?? ''}`));
      assert.ok(urls.console, 'the demo printed the console URL');
      await page.goto(`${urls.console}${query}`);
      return { page, errors };
    }

    async function statusOk(page, id) {
      await page.waitForSelector(`#${id}[data-kind="ok"], #${id}[data-kind="error"]`);
      const kind = await page.getAttribute(`#${id}`, 'data-kind');
      assert.equal(kind, 'ok', `#${id}: ${await page.textContent(`#${id}`)}`);
      return page.textContent(`#${id}`);
    }

    /** Subscribe, bind and write through the console; resolves to {subId, ref}. */
    async function runLoop(page, { topicUrl, filter, value, heartbeat }) {
      await page.selectOption('#topic', topicUrl);
      await page.fill(`#filters input[data-param="${filter}"]`, value);
      await page.fill('#heartbeat', String(heartbeat));
      await page.click('#create');
      await statusOk(page, 'sub-status');
      const subId = await page.getAttribute('#sub-status', 'data-id');
      await page.click('#token');
      await statusOk(page, 'token-status');
      await page.click('#connect');
      await page.waitForSelector('#log li[data-type="handshake"]');
      assert.match(await page.textContent('#log li[data-type="handshake"]'), new RegExp(`Subscription/${subId}`));
      assert.ok((await page.inputValue('#sample')).includes(value.split('|').pop()), 'the sample carries the filter value');
      await page.click('#write');
      await statusOk(page, 'write-status');
      const ref = await page.getAttribute('#write-status', 'data-ref');
      await page.waitForSelector(`#log li[data-type="event-notification"] .event[data-focus="${ref}"]`);
      return { subId, ref };
    }

    test('R4 backport: topics, Subscription, token, bind, heartbeat, a sample write and its notification; screenshot', async () => {
      const { page, errors } = await openConsole();
      const base = await statusOk(page, 'base-status');
      assert.match(base, /R4 \(Subscriptions Backport IG\): 4 topic\(s\)/);
      const code = `${LOINC}|${uniq('console')}`;
      const { subId, ref } = await runLoop(page, { topicUrl: TOPIC.observationChange, filter: 'code', value: code, heartbeat: 1 });
      await page.waitForSelector('#log li[data-type="heartbeat"]');

      // What the page showed is what the server holds.
      const client = fhir(urls.fhirBase);
      const written = await client.get(ref);
      assert.equal(written.status, 200, written.text);
      assert.deepEqual(written.body.code.coding.map((c) => `${c.system}|${c.code}`), [code]);
      const status = await client.get(`Subscription/${subId}/$status`);
      assert.equal(status.status, 200, status.text);
      assert.equal(param(status.body.entry?.[0]?.resource, 'events-since-subscription-start'), '1', status.text);
      const sub = await client.get(`Subscription/${subId}`);
      assert.equal(sub.body.criteria, TOPIC.observationChange);
      assert.equal(sub.body._criteria.extension[0].valueString, `Observation?code=${code}`);
      assert.equal(await page.textContent('#count-event-notification'), '1');

      fs.mkdirSync(ARTIFACTS, { recursive: true });
      const shot = path.join(ARTIFACTS, 'console.png');
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(fs.statSync(shot).size > 10_000, 'the screenshot has content');
      console.log(`console screenshot: ${shot}`);
      assert.deepEqual(errors, [], 'no script error on the page');
      await page.close();
    });

    test('R4 encounter-complete topic: the sample follows the trigger (status=finished) and the patient filter', async () => {
      const { page, errors } = await openConsole();
      await statusOk(page, 'base-status');
      const patient = `Patient/${uniq('p')}`;
      const { ref } = await runLoop(page, { topicUrl: TOPIC.encounterComplete, filter: 'patient', value: patient, heartbeat: 60 });
      const written = await fhir(urls.fhirBase).get(ref);
      assert.equal(written.status, 200, written.text);
      assert.equal(written.body.status, 'finished');
      assert.equal(written.body.subject.reference, patient);
      assert.deepEqual(errors, [], 'no script error on the page');
      await page.close();
    });

    test('R5 base: the same loop in the R5 shape (filterBy, SubscriptionStatus notifications)', async () => {
      assert.ok(urls.fhirBase, 'the demo printed its FHIR base');
      const r5Base = urls.fhirBase.replace(/\/R4$/, '/R5');
      const { page, errors } = await openConsole(`?base=${encodeURIComponent(r5Base)}`);
      assert.match(await statusOk(page, 'base-status'), /^FHIR R5: 4 topic\(s\)/);
      const identifier = `http://example.org/console|${uniq('r5')}`;
      const { subId, ref } = await runLoop(page, { topicUrl: TOPIC.patientChange, filter: 'identifier', value: identifier, heartbeat: 60 });
      const sub = await fhir(r5Base).get(`Subscription/${subId}`);
      assert.equal(sub.status, 200, sub.text);
      assert.equal(sub.body.topic, TOPIC.patientChange);
      assert.deepEqual(sub.body.filterBy, [{ resourceType: 'Patient', filterParameter: 'identifier', value: identifier }]);
      const raw = await page.textContent(`#log li[data-type="event-notification"]:has(.event[data-focus="${ref}"]) pre`);
      assert.equal(JSON.parse(raw).entry[0].resource.resourceType, 'SubscriptionStatus');
      assert.deepEqual(errors, [], 'no script error on the page');
      await page.close();
    });
  });

  test('--stop --dir stops everything it started: no process, no port left', async () => {
    assert.equal(started.code, 0, 'the demo had started');
    const stop = await stopDemo(setup);
    stopped = true;
    assert.equal(stop.code, 0, `scripts/demo --stop failed:\n${stop.stderr}${stop.stdout}`);
    await assertAllGone(setup);
  });
});

describe('scripts/demo in the foreground', () => {
  test('Ctrl-C stops every part and exits 0', async () => {
    const setup = await demoSetup();
    try {
      const demo = await startForeground(setup);
      const page = await fetch(`http://127.0.0.1:${setup.http}/fhir/R4/metadata`, { signal: AbortSignal.timeout(WAIT_MS) });
      assert.equal(page.status, 200);
      assert.equal(demoProcesses(setup).length >= 3, true, 'httpd, backend and notifier run');
      demo.interrupt();
      const exit = await demo.exited(60_000);
      assert.deepEqual(exit, { code: 0, signal: null }, demo.output());
      assert.match(demo.output(), /stopped the demo/);
      await assertAllGone(setup);
    } finally {
      await stopDemo(setup);
      killLeftovers(setup);
      setup.unregister();
      removeDir(setup.dir);
    }
  });
});
