// Driver of the peer benchmark (bench/peers): one TypeScript SDK client per
// path, all in this process, calling in one interleaved sequence.
//   node peers.mjs CONFIG.json
// CONFIG: {"warmup":200,"calls":1000,"ops":["ping","tools/list","echo"],
//          "paths":[{"name","kind":"http"|"sse"|"stdio","url","headers","command","args"}]}
// Prints one JSON object on stdout: {"paths":{name:{op:[µs,...]}}, "seconds"}.
// Calls are strictly sequential: one call is in flight at any moment, and each
// round visits every path and op, starting one path further each round, so
// every path sees the same machine load however it drifts.
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const REQ = { timeout: 60_000 };

function transport(p) {
  const headers = p.headers ?? {};
  switch (p.kind) {
    case 'http':
      return new StreamableHTTPClientTransport(new URL(p.url), { requestInit: { headers } });
    case 'sse':
      return new SSEClientTransport(new URL(p.url), {
        requestInit: { headers },
        eventSourceInit: {
          fetch: (u, init) => {
            const h = new Headers(init?.headers);
            for (const [k, v] of Object.entries(headers)) h.set(k, v);
            return fetch(u, { ...init, headers: h });
          },
        },
      });
    case 'stdio':
      return new StdioClientTransport({ command: p.command, args: p.args ?? [], env: process.env, stderr: 'ignore' });
    default:
      throw new Error(`unknown kind ${p.kind}`);
  }
}

const calls = {
  ping: (c) => c.ping(REQ),
  'tools/list': async (c) => {
    const r = await c.listTools(undefined, REQ);
    if (!r.tools.some((t) => t.name === 'echo')) throw new Error('tools/list has no echo');
  },
  echo: async (c) => {
    const r = await c.callTool({ name: 'echo', arguments: { message: 'bench' } }, undefined, REQ);
    const text = r.content?.[0]?.text ?? '';
    if (r.isError || !text.includes('bench')) throw new Error(`echo answered ${JSON.stringify(r)}`);
  },
};

const clients = [];
for (const p of cfg.paths) {
  const c = new Client({ name: 'countersign-bench', version: '1' });
  try {
    await c.connect(transport(p), REQ);
  } catch (e) {
    throw new Error(`connecting ${p.name}: ${e.message}`);
  }
  clients.push({ p, c });
}

const out = {};
for (const { p } of clients) out[p.name] = Object.fromEntries(cfg.ops.map((op) => [op, []]));

async function round(r, keep) {
  for (let k = 0; k < clients.length; k++) {
    const { p, c } = clients[(r + k) % clients.length];
    for (let j = 0; j < cfg.ops.length; j++) {
      const op = cfg.ops[(r + j) % cfg.ops.length];
      const t0 = process.hrtime.bigint();
      try {
        await calls[op](c);
      } catch (e) {
        throw new Error(`${p.name} ${op} (round ${r}): ${e.message}`);
      }
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (keep) out[p.name][op].push(us);
    }
  }
}

for (let r = 0; r < cfg.warmup; r++) await round(r, false);
const start = process.hrtime.bigint();
for (let r = 0; r < cfg.calls; r++) await round(r, true);
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
for (const { c } of clients) await c.close().catch(() => {});
// Exit only once the pipe has taken everything: stdout is asynchronous.
process.stdout.write(JSON.stringify({ paths: out, seconds }) + '\n', () => process.exit(0));
