// Free TCP ports on 127.0.0.1. A port found free can be taken by someone else before our
// server binds it, so starters retry with a new port when the bind fails (withFreePort).
import net from 'node:net';
import { DEFAULT_TIMEOUT_MS, waitFor } from './util.mjs';

const HOST = '127.0.0.1';

// Asks the kernel for an unused port by binding port 0, then releases it.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// n distinct free ports (held open together so they differ).
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.on('error', reject);
        server.listen(0, HOST, resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

// True if something accepts TCP connections on 127.0.0.1:port.
export function isPortOpen(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    const done = (open) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function waitForPort(port, { timeoutMs = DEFAULT_TIMEOUT_MS } = {}) {
  return waitFor(() => isPortOpen(port), { what: `127.0.0.1:${port} to accept connections`, timeoutMs });
}

// Calls start(port) with a fresh free port; retries (bounded) while start fails with
// err.portInUse, i.e. the port was taken between freePort() and the server's bind.
export async function withFreePort(start, { attempts = 3 } = {}) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await start(port);
    } catch (err) {
      if (!err.portInUse || attempt >= attempts) throw err;
    }
  }
}
