#!/usr/bin/env node
// MCP test client for Countersign's real-peer tests (see README.md).
//   node client.mjs --url URL [--token T] [--transport http|sse] [--scenario NAME]...
//       [--name CLIENT-NAME] [--host-timeout-ms N]
//   node client.mjs --stdio "command arg arg" [--scenario NAME]...
// Prints one JSON line per scenario: {"scenario","ok","detail"}; exit 0 iff all ok.
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

const SAMPLED_TEXT = 'sampled-by-test';
const ROOT = { uri: 'file:///tmp/countersign-root', name: 'test-root' };
// The proxy under test holds tool calls for human approval: be patient.
const REQ = { timeout: 10 * 60 * 1000, resetTimeoutOnProgress: true };

const usage = 'usage: node client.mjs (--url URL [--token T] [--transport http|sse] | --stdio "cmd args") [--scenario NAME]...';
let opt;
try {
  ({ values: opt } = parseArgs({
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      transport: { type: 'string', default: 'http' },
      stdio: { type: 'string' },
      scenario: { type: 'string', multiple: true },
      name: { type: 'string', default: 'countersign-peer-test' },
      'host-timeout-ms': { type: 'string', default: '60000' },
    },
  }));
  if (!opt.url === !opt.stdio) throw new Error('give exactly one of --url and --stdio');
  if (!['http', 'sse'].includes(opt.transport)) throw new Error(`unknown --transport ${opt.transport}`);
} catch (e) {
  console.error(`${e.message}\n${usage}`);
  process.exit(2);
}
const errMsg = (e) => [e?.message ?? String(e), e?.cause?.message].filter(Boolean).join(': ');

// ---- transport -------------------------------------------------------------
function makeTransport() {
  if (opt.stdio) {
    const [command, ...args] = opt.stdio.trim().split(/\s+/);
    return new StdioClientTransport({ command, args, env: process.env, stderr: 'inherit' });
  }
  const url = new URL(opt.url);
  const headers = opt.token ? { Authorization: `Bearer ${opt.token}` } : {};
  const requestInit = { headers };
  if (opt.transport === 'http') return new StreamableHTTPClientTransport(url, { requestInit });
  // sse: the SDK already adds requestInit headers to the GET; set them on its fetch too.
  const eventSourceInit = {
    fetch: (u, init) => {
      const h = new Headers(init?.headers);
      for (const [k, v] of Object.entries(headers)) h.set(k, v);
      return fetch(u, { ...init, headers: h });
    },
  };
  return new SSEClientTransport(url, { requestInit, eventSourceInit });
}

// ---- client-side request handlers ------------------------------------------
// A plausible value for one JSON-schema property of an elicitation form.
function sampleValue(key, s) {
  const pick = s.enum?.[0] ?? s.oneOf?.[0]?.const ?? s.anyOf?.[0]?.const;
  switch (s.type) {
    case 'boolean': return s.default ?? true;
    case 'integer':
    case 'number': {
      if (typeof s.default === 'number') return s.default;
      const v = s.minimum ?? (s.maximum !== undefined ? Math.min(s.maximum, 1) : 1);
      return s.type === 'integer' ? Math.ceil(v) : v;
    }
    case 'array': {
      if (Array.isArray(s.default)) return s.default;
      const it = s.items ?? {};
      const one = it.enum?.[0] ?? it.anyOf?.[0]?.const ?? it.oneOf?.[0]?.const ?? 'item';
      return Array(Math.max(1, s.minItems ?? 1)).fill(one);
    }
    default: { // string
      if (pick !== undefined) return pick;
      if (typeof s.default === 'string') return s.default;
      const byFormat = { email: 'tester@example.com', uri: 'https://example.com/',
        date: '2000-01-01', 'date-time': '2000-01-01T00:00:00Z' }[s.format];
      let v = byFormat ?? (/name/i.test(key) ? 'Countersign Tester' : `test-${key}`);
      if (s.minLength && v.length < s.minLength) v = v.padEnd(s.minLength, 'x');
      if (s.maxLength && v.length > s.maxLength) v = v.slice(0, s.maxLength);
      return v;
    }
  }
}

let lastElicited = null;
const wire = []; // params of every notifications/progress received, in order
function installHandlers(client) {
  client.setRequestHandler(CreateMessageRequestSchema, async () => ({
    role: 'assistant', model: 'countersign-test', stopReason: 'endTurn',
    content: { type: 'text', text: SAMPLED_TEXT },
  }));
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    const schema = req.params.requestedSchema ?? {};
    const content = {};
    for (const key of schema.required ?? []) content[key] = sampleValue(key, schema.properties?.[key] ?? {});
    lastElicited = content;
    return { action: 'accept', content };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [ROOT] }));
}

// ---- helpers -----------------------------------------------------------------
async function listAllTools(client) {
  const tools = [];
  let cursor, pages = 0;
  do {
    const r = await client.listTools(cursor ? { cursor } : {}, REQ);
    tools.push(...r.tools);
    cursor = r.nextCursor;
    pages++;
  } while (cursor);
  return { tools, pages };
}

// Real tool name: exact name if listed, else the first name matching re.
// Conditional tools appear just after initialization, so re-list a few times.
async function findTool(client, exact, re) {
  for (let i = 0; i < 5; i++) {
    const { tools } = await listAllTools(client);
    const t = tools.find((t) => t.name === exact) ?? tools.find((t) => re.test(t.name));
    if (t) return t.name;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`no tool named ${exact} (or matching ${re}) in tools/list`);
}

const texts = (res) => (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
const call = (client, name, args, extra = {}) =>
  client.callTool({ name, arguments: args }, undefined, { ...REQ, ...extra });
function check(cond, msg) { if (!cond) throw new Error(msg); }
function notError(res) { check(!res.isError, `tool returned isError: ${texts(res).slice(0, 300)}`); }

// ---- scenarios ---------------------------------------------------------------
const scenarios = {
  async echo(c) {
    const res = await call(c, await findTool(c, 'echo', /^echo$/), { message: 'hello relay' });
    notError(res);
    check(texts(res).includes('hello relay'), `echo text was ${JSON.stringify(texts(res))}`);
    return texts(res);
  },
  async structured(c) {
    const name = await findTool(c, 'get-structured-content', /structured/);
    const res = await call(c, name, { location: 'New York' });
    notError(res);
    const sc = res.structuredContent;
    check(sc && typeof sc === 'object' && Object.keys(sc).length > 0, 'no structuredContent');
    return { tool: name, structuredContent: sc };
  },
  async 'resource-links'(c) {
    const name = await findTool(c, 'get-resource-links', /resource-links?$/);
    const res = await call(c, name, { count: 3 });
    notError(res);
    const links = (res.content ?? []).filter((x) => x.type === 'resource_link');
    check(links.length > 0, 'no resource_link content items');
    return { tool: name, links: links.map((l) => l.uri) };
  },
  async progress(c) {
    const name = await findTool(c, 'trigger-long-running-operation', /long-running/);
    const steps = 3;
    const seen = [];
    const from = wire.length;
    const res = await call(c, name, { duration: 1.5, steps }, { onprogress: (p) => seen.push(p) });
    notError(res);
    // Count on the wire: the SDK drops a progress notification that arrives in
    // the same read as the response (its handler runs a microtask later).
    // Server-everything reports progress i of total=steps; the proxy may add
    // its own first, and then moves the server's values (progress and total
    // alike) past its own so that progress keeps rising, as the spec says it
    // must: count the server's by how far each is from its total.
    const onWire = wire.slice(from).map(({ progressToken, ...p }) => p);
    const fromServer = new Set(onWire.filter((p) => typeof p.total === 'number' && p.total - p.progress < steps)
      .map((p) => p.total - p.progress));
    check(fromServer.size >= steps, `expected ${steps} server progress notifications, saw ${JSON.stringify(onWire)}`);
    for (let i = 1; i < onWire.length; i++) {
      check(onWire[i].progress > onWire[i - 1].progress, `progress went from ${onWire[i - 1].progress} to ${onWire[i].progress}: ${JSON.stringify(onWire)}`);
    }
    return { tool: name, progress: onWire, onprogressCallbacks: seen.length, result: texts(res) };
  },
  async sampling(c) {
    const name = await findTool(c, 'trigger-sampling-request', /sampling(?!.*async)/);
    const res = await call(c, name, { prompt: 'say something', maxTokens: 20 });
    notError(res);
    check(texts(res).includes(SAMPLED_TEXT), `result lacks ${SAMPLED_TEXT}: ${texts(res).slice(0, 300)}`);
    return { tool: name, result: texts(res) };
  },
  async elicitation(c) {
    const name = await findTool(c, 'trigger-elicitation-request', /elicitation(?!.*(async|url))/);
    lastElicited = null;
    const res = await call(c, name, {});
    notError(res);
    check(lastElicited, 'no elicitation/create request reached the client');
    const t = texts(res);
    const missing = Object.values(lastElicited).flat().map(String).filter((v) => !t.includes(v));
    check(missing.length === 0, `result lacks accepted values ${JSON.stringify(missing)}: ${t.slice(0, 300)}`);
    return { tool: name, accepted: lastElicited, result: t };
  },
  async roots(c) {
    const name = await findTool(c, 'get-roots-list', /roots/);
    const res = await call(c, name, {});
    notError(res);
    check(texts(res).includes(ROOT.uri), `result lacks ${ROOT.uri}: ${texts(res).slice(0, 300)}`);
    return { tool: name, result: texts(res) };
  },
  // An AI app with the SDK's default request options (its own timeout, no
  // progress): Countersign answers "call again" before that timeout ends;
  // the person approves meanwhile, and the same call then runs.
  async 'retry-after-timeout'(c) {
    const name = await findTool(c, 'echo', /^echo$/);
    const opts = { timeout: Number(opt['host-timeout-ms']) };
    const first = await c.callTool({ name, arguments: { message: 'hello later' } }, undefined, opts);
    check(first.isError && texts(first).includes('Waiting for approval in Countersign'),
      `first answer was not "waiting": ${JSON.stringify(first).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 1500)); // the person approves meanwhile
    const second = await c.callTool({ name, arguments: { message: 'hello later' } }, undefined, opts);
    notError(second);
    check(texts(second).includes('hello later'), `retry text was ${JSON.stringify(texts(second))}`);
    return { first: texts(first), second: texts(second) };
  },
  // An AI app that restarts its timer on progress waits as long as the
  // person takes: Countersign's waiting progress keeps it listening.
  async 'patient'(c) {
    const name = await findTool(c, 'echo', /^echo$/);
    const opts = { timeout: Number(opt['host-timeout-ms']), resetTimeoutOnProgress: true, onprogress: () => {} };
    const res = await c.callTool({ name, arguments: { message: 'hello patient' } }, undefined, opts);
    notError(res);
    check(texts(res).includes('hello patient'), `text was ${JSON.stringify(texts(res))}`);
    return texts(res);
  },
  async list(c) {
    const { tools, pages } = await listAllTools(c);
    check(tools.length > 0, 'tools/list returned no tools');
    return { count: tools.length, pages, names: tools.map((t) => t.name) };
  },
};

// ---- main ----------------------------------------------------------------------
const out = (scenario, ok, detail) => process.stdout.write(JSON.stringify({ scenario, ok, detail }) + '\n');
const chosen = opt.scenario?.length ? opt.scenario : Object.keys(scenarios);
const unknown = chosen.filter((s) => !scenarios[s]);
if (unknown.length) {
  console.error(`unknown scenario(s): ${unknown.join(', ')}; known: ${Object.keys(scenarios).join(', ')}`);
  process.exit(2);
}

const client = new Client(
  { name: opt.name, version: '1.0.0' },
  { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } },
);
installHandlers(client);
let transport, allOk = true;
try {
  transport = makeTransport();
  await client.connect(transport, REQ);
  const onmessage = transport.onmessage; // tap progress before the SDK sees it
  transport.onmessage = (msg, extra) => {
    if (msg?.method === 'notifications/progress') wire.push(msg.params);
    onmessage?.(msg, extra);
  };
} catch (e) {
  console.error(`connect: ${errMsg(e)}`);
  out('connect', false, errMsg(e));
  process.exit(1);
}
for (const name of chosen) {
  try {
    out(name, true, await scenarios[name](client));
  } catch (e) {
    allOk = false;
    console.error(`${name}: ${errMsg(e)}`);
    out(name, false, errMsg(e));
  }
}
try {
  if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
  await client.close();
} catch (e) {
  console.error(`close: ${errMsg(e)}`);
}
process.exit(allOk ? 0 : 1);
