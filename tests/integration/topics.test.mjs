// The loaded SubscriptionTopics: served read-only at [base]/SubscriptionTopic (R5/R4B
// shape) and, at an R4 base, as the backport IG's Basic resources at
// [base]/Basic?code=SubscriptionTopic and [base]/Basic/[id]; every other Basic request
// still reaches the FHIR server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startStack } from './lib/stack.mjs';
import {
  ALL_TOPICS,
  TOPIC,
  assertOutcome,
  clientsFor,
  fhirsubDirectives,
  makeKeyDir,
  stopAndCheckLog,
  USERS,
  wsUrlFor,
} from './lib/fhirsub.mjs';

const XVER = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const R5_PATH = '/fhir/R5';

let stack;
let r4;
let r5;

before(async () => {
  const key = makeKeyDir();
  stack = await startStack({
    users: USERS,
    locations: ({ backend, fhirPath }) => [
      { path: fhirPath, directives: fhirsubDirectives({ wsUrl: wsUrlFor(9), keyFile: key.keyFile }), proxyTo: backend.url },
      { path: R5_PATH, directives: fhirsubDirectives({ wsUrl: wsUrlFor(9), keyFile: key.keyFile, version: 'R5' }) },
    ],
  });
  r4 = clientsFor(stack.fhirUrl);
  r5 = clientsFor(`${stack.httpd.baseUrl}${R5_PATH}`);
});

after(async () => {
  if (stack) await stopAndCheckLog(stack);
});

function topicUrls(bundle) {
  return (bundle.entry ?? []).map((e) => e.resource.url ?? e.resource.extension?.find((x) => x.url === `${XVER}url`)?.valueUri);
}

describe('[base]/SubscriptionTopic', () => {
  test('search lists every loaded topic as a SubscriptionTopic', async () => {
    for (const client of [r4.alice, r5.alice]) {
      const res = await client.get('SubscriptionTopic');
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.type, 'searchset');
      assert.equal(res.body.total, ALL_TOPICS.length);
      assert.deepEqual(topicUrls(res.body).sort(), [...ALL_TOPICS].sort());
      for (const e of res.body.entry) {
        assert.equal(e.resource.resourceType, 'SubscriptionTopic');
        assert.equal(e.search.mode, 'match');
        assert.match(e.fullUrl, new RegExp(`/SubscriptionTopic/${e.resource.id}$`));
      }
    }
  });

  test('search by url and _id, read by id', async () => {
    const byUrl = await r4.alice.get(`SubscriptionTopic?url=${encodeURIComponent(TOPIC.encounterComplete)}`);
    assert.equal(byUrl.body.total, 1);
    const id = byUrl.body.entry[0].resource.id;
    const byId = await r4.alice.get(`SubscriptionTopic?_id=${id}`);
    assert.deepEqual(topicUrls(byId.body), [TOPIC.encounterComplete]);
    const read = await r5.alice.get(`SubscriptionTopic/${id}`);
    assert.equal(read.status, 200, read.text);
    assert.equal(read.body.url, TOPIC.encounterComplete);
    assert.ok(read.body.resourceTrigger.length >= 1);
    const none = await r4.alice.get('SubscriptionTopic?url=http://example.org/none');
    assert.equal(none.body.total, 0);
    assert.equal(none.body.entry, undefined); // FHIR JSON has no empty arrays
  });

  test('unknown ids, unknown parameters and writes are refused with OperationOutcomes', async () => {
    assertOutcome(await r4.alice.get('SubscriptionTopic/nope'), 404, 'not-found');
    assertOutcome(await r4.alice.get('SubscriptionTopic?title=x'), 400);
    assertOutcome(await r4.alice.post('SubscriptionTopic', { resourceType: 'SubscriptionTopic' }), 405);
  });
});

describe('R4: topics as Basic resources', () => {
  test('Basic?code=SubscriptionTopic lists the topics in the backport IG form', async () => {
    const res = await r4.alice.get('Basic?code=SubscriptionTopic');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.total, ALL_TOPICS.length);
    assert.deepEqual(topicUrls(res.body).sort(), [...ALL_TOPICS].sort());
    for (const e of res.body.entry) {
      const basic = e.resource;
      assert.equal(basic.resourceType, 'Basic');
      assert.deepEqual(basic.code.coding[0], { system: 'http://hl7.org/fhir/fhir-types', code: 'SubscriptionTopic' });
      assert.match(e.fullUrl, new RegExp(`/Basic/${basic.id}$`));
      const trigger = basic.extension.find((x) => x.url === `${XVER}resourceTrigger`);
      assert.ok(trigger?.extension?.some((x) => x.url === 'resource' && x.valueUri), JSON.stringify(trigger));
    }
  });

  test('Basic/[topic id] is the topic; the encounter-end criteria survive', async () => {
    const list = await r4.alice.get(`SubscriptionTopic?url=${encodeURIComponent(TOPIC.encounterComplete)}`);
    const id = list.body.entry[0].resource.id;
    const res = await r4.alice.get(`Basic/${id}`);
    assert.equal(res.status, 200, res.text);
    const trigger = res.body.extension.find((x) => x.url === `${XVER}resourceTrigger`);
    const qc = trigger.extension.find((x) => x.url === 'queryCriteria');
    assert.equal(qc.extension.find((x) => x.url === 'previous').valueString, list.body.entry[0].resource.resourceTrigger[0].queryCriteria.previous);
    assert.equal(qc.extension.find((x) => x.url === 'requireBoth').valueBoolean, true);
  });

  test('other Basic requests still reach the FHIR server', async () => {
    const created = await r4.alice.post('Basic', { resourceType: 'Basic', code: { text: 'not a topic' } });
    assert.equal(created.status, 201, created.text);
    const read = await r4.alice.get(`Basic/${created.body.id}`);
    assert.equal(read.status, 200);
    assert.equal(read.body.code.text, 'not a topic');
    const unknown = await r4.alice.get('Basic/not-a-topic-id');
    assert.equal(unknown.status, 404);
  });

  test('an R5 base serves no Basic topics', async () => {
    const res = await r5.alice.get('Basic?code=SubscriptionTopic');
    assert.notEqual(res.status, 200);
  });
});
