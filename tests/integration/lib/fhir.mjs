// A small fetch wrapper for FHIR JSON calls. It never throws on HTTP errors: tests assert statuses.
import { DEFAULT_TIMEOUT_MS } from './util.mjs';

const FHIR_JSON = 'application/fhir+json';

function joinUrl(baseUrl, pathOrUrl) {
  if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl; // e.g. a Location header
  return `${baseUrl.replace(/\/+$/, '')}/${String(pathOrUrl).replace(/^\/+/, '')}`;
}

function contentTypeFor(method, body) {
  return method === 'PATCH' && Array.isArray(body) ? 'application/json-patch+json' : FHIR_JSON;
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

/**
 * @param {string} baseUrl  FHIR base, e.g. http://127.0.0.1:PORT/fhir/R4
 * @param {{user?: string, password?: string, headers?: object, timeoutMs?: number}} [opts]
 * Every call resolves to {status, headers (lower-case names), body (parsed JSON or null), text}.
 */
export function fhir(baseUrl, { user, password, headers: defaultHeaders = {}, timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  const auth = user !== undefined ? { Authorization: `Basic ${Buffer.from(`${user}:${password ?? ''}`).toString('base64')}` } : {};

  async function request(method, path, body, headers = {}) {
    const hasBody = body !== undefined && body !== null;
    const response = await fetch(joinUrl(baseUrl, path), {
      method,
      headers: {
        Accept: FHIR_JSON,
        ...(hasBody ? { 'Content-Type': contentTypeFor(method, body) } : {}),
        ...auth,
        ...defaultHeaders,
        ...headers,
      },
      body: hasBody ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    return { status: response.status, headers: Object.fromEntries(response.headers), body: parseJson(text), text };
  }

  return {
    baseUrl,
    request,
    get: (path, headers) => request('GET', path, undefined, headers),
    del: (path, headers) => request('DELETE', path, undefined, headers),
    post: (path, body, headers) => request('POST', path, body, headers),
    put: (path, body, headers) => request('PUT', path, body, headers),
    patch: (path, body, headers) => request('PATCH', path, body, headers),
  };
}
