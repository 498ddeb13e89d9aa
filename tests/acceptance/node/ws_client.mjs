// The graphql-ws reference client (what Apollo, urql and Relay use) against a running server.
//
// argv[2] is JSON: {wsUrl, httpUrl, token, storeId, skuId, boundMs}. As a store's staff it subscribes to
// stockChanged(storeId), runs a query and a mutation (receiveStock) over the same socket, waits for the event,
// sends three more receiveStock at once on the socket, then signs the session out over HTTP (logout) and waits for the server to close the socket and the
// subscription to end. Prints one JSON document with what happened; the Python test asserts on it.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const args = JSON.parse(process.argv[2]);
const out = { connected: false, acknowledged: false, events: [], closes: [], subscription: null };
const started = Date.now();
const since = () => Date.now() - started;

function finish() {
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}
// Whatever happens, print what was seen.
const watchdog = setTimeout(() => { out.timedOut = true; finish(); }, args.boundMs + 20000);

const client = createClient({
  url: args.wsUrl,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${args.token}` },
  retryAttempts: 0,
  lazy: false,
  on: {
    connected: () => { out.connected = true; out.acknowledged = true; },
    closed: (event) => { out.closes.push({ code: event.code, reason: String(event.reason || ''), atMs: since() }); },
    error: (error) => { out.clientError = String(error && error.message ? error.message : error); },
  },
});

function once(payload) {
  return new Promise((resolve) => {
    let result = null;
    client.subscribe(payload, {
      next: (value) => { result = value; },
      error: (error) => resolve({ error: describe(error) }),
      complete: () => resolve({ result }),
    });
  });
}

function describe(error) {
  if (Array.isArray(error)) return { graphqlErrors: error };
  if (error && typeof error.code === 'number') return { closeCode: error.code, reason: String(error.reason || '') };
  return { message: String(error && error.message ? error.message : error) };
}

let resolveEvent;
const eventArrived = new Promise((resolve) => { resolveEvent = resolve; });
let resolveEnded;
const subscriptionEnded = new Promise((resolve) => { resolveEnded = resolve; });

client.subscribe(
  {
    query: 'subscription($s: ID!) { stockChanged(storeId: $s) { sku { id barcode } onHand available } }',
    variables: { s: args.storeId },
  },
  {
    next: (value) => {
      out.events.push(value);
      const level = value && value.data && value.data.stockChanged;
      if (level && level.sku && level.sku.id === args.skuId) resolveEvent(value);
    },
    error: (error) => { out.subscription = { ended: 'error', atMs: since(), error: describe(error) }; resolveEnded(); },
    complete: () => { out.subscription = { ended: 'complete', atMs: since() }; resolveEnded(); },
  },
);

async function main() {
  // A query on the same socket; once it answers, the subscription sent before it is running.
  out.query = await once({ query: '{ me { ... on StaffViewer { store { id code } } } }' });
  await new Promise((r) => setTimeout(r, 300));
  const receive = (key) => once({
    query: 'mutation($s: ID!, $k: ID!, $key: String!) { receiveStock(input: {storeId: $s, idempotencyKey: $key, '
      + 'lines: [{skuId: $k, quantity: 3}]}) { errors { code field } levels { onHand available } } }',
    variables: { s: args.storeId, k: args.skuId, key: `ws-client-${started}-${key}` },
  });
  out.mutation = await receive('1');
  out.event = await Promise.race([eventArrived, new Promise((r) => setTimeout(() => r(null), 5000))]);
  // Three at once on the one socket: each gets its own session and transaction.
  out.concurrent = await Promise.all(['2', '3', '4'].map(receive));

  // Sign the session out over HTTP; the open socket must not outlive it.
  const response = await fetch(args.httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${args.token}` },
    body: JSON.stringify({ query: 'mutation { logout { ok } }' }),
  });
  out.logout = { status: response.status, body: await response.json() };
  const loggedOutAt = since();
  await Promise.race([subscriptionEnded, new Promise((r) => setTimeout(r, args.boundMs + 5000))]);
  // The close event may follow the subscription's end by a tick.
  const closeBy = Date.now() + 2000;
  while (out.closes.length === 0 && Date.now() < closeBy) await new Promise((r) => setTimeout(r, 50));
  out.loggedOutAtMs = loggedOutAt;
  out.endedAfterLogoutMs = out.subscription ? out.subscription.atMs - loggedOutAt : null;
  out.closedAfterLogoutMs = out.closes.length ? out.closes[0].atMs - loggedOutAt : null;
  clearTimeout(watchdog);
  await client.dispose();
  finish();
}

main().catch((error) => { out.fatal = String(error && error.stack ? error.stack : error); finish(); });
