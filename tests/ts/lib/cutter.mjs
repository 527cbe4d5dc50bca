// A TCP proxy between an SDK client and the gateway for the resumption tests: it forwards
// bytes both ways, records every HTTP request the client sent (head and body, in order, per
// connection) and every byte the gateway answered, and can cut chosen connections on both
// sides. Waits are on its own events (`change` after every chunk), bounded by a timeout.

import { EventEmitter } from 'node:events';
import net from 'node:net';

const HEAD = /^(GET|POST|DELETE|PUT|PATCH|OPTIONS|HEAD) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/;

export class Cutter extends EventEmitter {
  constructor(targetPort, targetHost = '127.0.0.1') {
    super();
    this.target = { port: targetPort, host: targetHost };
    /** Every connection: `{ id, client: Buffer, server: Buffer, sockets, closed, cut }`. */
    this.conns = [];
    /** Every request: `{ seq, conn, method, path, headers, body, afterCuts }`. */
    this.requests = [];
    this.cuts = 0;
    this.server = net.createServer((socket) => this.#accept(socket));
  }

  async start() {
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this;
  }

  async close() {
    for (const c of this.conns) for (const s of c.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Destroys (both sides of) every open connection for which `pick(conn)` holds; returns how many. */
  cut(pick) {
    let n = 0;
    for (const c of this.conns) {
      if (c.closed || !pick(c)) continue;
      c.cut = true;
      for (const s of c.sockets) s.destroy();
      n++;
    }
    if (n) this.cuts++;
    this.emit('change');
    return n;
  }

  /** Resolves with `probe()`'s first truthy value, checked now and after every chunk; rejects after `ms`. */
  waitFor(probe, what, ms = 10_000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value) {
          done();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; requests: ${this.describe()}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.off('change', check);
      };
      this.on('change', check);
      check();
    });
  }

  describe() {
    return JSON.stringify(
      this.requests.map((r) => ({
        seq: r.seq,
        conn: r.conn,
        method: r.method,
        path: r.path,
        'last-event-id': r.headers['last-event-id'],
        afterCuts: r.afterCuts,
      })),
    );
  }

  #accept(socket) {
    const conn = { id: this.conns.length, client: Buffer.alloc(0), server: Buffer.alloc(0), scanned: 0, sockets: [socket], closed: false, cut: false };
    this.conns.push(conn);
    const upstream = net.connect(this.target);
    conn.sockets.push(upstream);
    const closeBoth = () => {
      conn.closed = true;
      socket.destroy();
      upstream.destroy();
      this.emit('change');
    };
    socket.on('data', (chunk) => {
      conn.client = Buffer.concat([conn.client, chunk]);
      this.#scan(conn);
      upstream.write(chunk);
      this.emit('change');
    });
    upstream.on('data', (chunk) => {
      conn.server = Buffer.concat([conn.server, chunk]);
      socket.write(chunk);
      this.emit('change');
    });
    for (const s of [socket, upstream]) {
      s.on('error', closeBoth);
      s.on('close', closeBoth);
    }
  }

  #scan(conn) {
    for (;;) {
      const text = conn.client.subarray(conn.scanned).toString('latin1');
      const m = HEAD.exec(text);
      if (!m) return;
      const headers = {};
      for (const line of m[3].split('\r\n')) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const length = Number(headers['content-length'] ?? 0);
      const bodyStart = conn.scanned + m[0].length;
      if (conn.client.length < bodyStart + length) return; // the body is not all here yet
      this.requests.push({
        seq: this.requests.length,
        conn: conn.id,
        method: m[1],
        path: m[2],
        headers,
        body: conn.client.subarray(bodyStart, bodyStart + length).toString('utf8'),
        afterCuts: this.cuts,
      });
      conn.scanned = bodyStart + length;
    }
  }
}

/** The `endpoint` events in `raw` SSE bytes: `[{ id, data }]`. */
export function endpointEvents(raw) {
  const events = [];
  for (const block of raw.toString('utf8').split(/\r?\n\r?\n/)) {
    const fields = {};
    for (const line of block.split(/\r?\n/)) {
      const m = /^(event|id|data): ?(.*)$/.exec(line);
      if (m) fields[m[1]] = m[2];
    }
    if (fields.event === 'endpoint') events.push({ id: fields.id, data: fields.data });
  }
  return events;
}
