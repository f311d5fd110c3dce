// A websocket client (the `ws` package) with a bounded wait for each next message.
import WebSocket from 'ws';
import { DEFAULT_TIMEOUT_MS } from './util.mjs';

function parseMessage(data, isBinary) {
  if (isBinary) return data;
  const text = data.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Opens url (ws:// or wss://; `ca` trusts a test certificate). Resolves once open to
 * {socket, next({timeoutMs}) → next message (parsed JSON, else text), send(value), close()}.
 * Messages are queued from the moment the socket opens, so none is lost between next() calls.
 */
export function connectWs(url, { timeoutMs = DEFAULT_TIMEOUT_MS, headers, ca } = {}) {
  const socket = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, ...(ca ? { ca } : {}) });
  const queue = [];
  const waiters = [];
  let closed = null;
  socket.on('message', (data, isBinary) => {
    const message = parseMessage(data, isBinary);
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(message);
    else queue.push(message);
  });
  socket.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`websocket closed (${code} ${closed.reason})`));
  });

  const next = ({ timeoutMs: waitMs = timeoutMs } = {}) => {
    if (queue.length) return Promise.resolve(queue.shift());
    if (closed) return Promise.reject(new Error(`websocket closed (${closed.code} ${closed.reason})`));
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`no websocket message within ${waitMs} ms`));
      }, waitMs);
      waiter.resolve = (m) => (clearTimeout(timer), resolve(m));
      waiter.reject = (e) => (clearTimeout(timer), reject(e));
      waiters.push(waiter);
    });
  };

  const client = {
    socket,
    next,
    send: (value) => socket.send(typeof value === 'string' ? value : JSON.stringify(value)),
    closeInfo: () => closed,
    close: () =>
      new Promise((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        socket.close();
        setTimeout(() => (socket.terminate(), resolve()), 2000).unref();
      }),
  };
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(client));
    // Errors after open show up as 'close'; this listener keeps them from being thrown.
    socket.on('error', reject);
    socket.once('unexpected-response', (req, res) => {
      req.destroy();
      reject(new Error(`websocket upgrade refused: HTTP ${res.statusCode}`));
    });
  });
}
