// Node.js interop: @grpc/grpc-js + @grpc/proto-loader against a real sluiced (started by
// tests/interop/run_with_sluiced.py, which sets SLUICE_TARGET). Runs a batch (BatchProcess
// bidi stream: header, prompts, end) and Start + Wait, and checks an error path.
// Exits non-zero on the first failed check.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const root = path.resolve(__dirname, '..', '..', '..');
const def = loader.loadSync('sluice/v1/sluice.proto', {
  includeDirs: [path.join(root, 'proto'), '/usr/include'],
  keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const Sluice = grpc.loadPackageDefinition(def).sluice.v1.Sluice;
const client = new Sluice(process.env.SLUICE_TARGET, grpc.credentials.createInsecure());

function check(cond, what) {
  if (!cond) {
    console.error('FAIL: ' + what);
    process.exit(1);
  }
  console.log('ok: ' + what);
}

function unary(method, req) {
  return new Promise((resolve, reject) => {
    client[method](req, { deadline: Date.now() + 30000 }, (err, resp) => err ? reject(err) : resolve(resp));
  });
}

function batch(sessionId, n) {
  return new Promise((resolve, reject) => {
    const call = client.BatchProcess({ deadline: Date.now() + 60000 });
    const results = new Map();
    let summary = null;
    call.on('data', (ev) => {
      if (ev.kind === 'results') {
        for (const r of ev.results.results) {
          check(!results.has(r.index), `result ${r.index} arrives once`);
          results.set(r.index, r);
        }
      } else if (ev.kind === 'summary') {
        summary = ev.summary;
      }
    });
    call.on('error', reject);
    call.on('end', () => resolve({ results, summary }));
    call.write({ header: { session_id: sessionId, expected_prompts: n } });
    const prompts = [...Array(n).keys()].map((i) => ({ text: `node prompt ${i}`, index: i, custom_id: `js-${i}` }));
    prompts.slice(0, n / 2).forEach((p) => call.write({ prompt: p }));   // one per message
    call.write({ prompts: { prompts: prompts.slice(n / 2) } });          // several in one
    call.write({ end: {} });
    call.end();
  });
}

async function main() {
  const open = await unary('OpenSession', {
    config: { models: [{ name: 'm-a', weight: 1 }, { name: 'm-b', weight: 1 }] },
  });
  const sid = open.session_id;
  check(sid.startsWith('local:s'), 'OpenSession returns a session id');

  const { results, summary } = await batch(sid, 25);
  check(results.size === 25, 'BatchProcess: 25 results');
  for (const [i, r] of results)
    check(!r.response.is_error && r.response.completion.includes(`node prompt ${i}`) &&
          r.custom_id === `js-${i}`, `batch result ${i} matches its prompt`);
  check(summary && summary.prompts === 25 && summary.succeeded === 25,
        'BatchProcess: summary counts 25 succeeded');

  const started = await unary('Start', {
    session_id: sid, prompts: [0, 1, 2, 3, 4].map((i) => ({ text: `started from node ${i}`, index: i })),
  });
  check(started.task_ids.length === 5, 'Start returns 5 task ids');
  const w = await unary('Wait', { task_ids: started.task_ids, timeout_ms: 30000 });
  check(w.all_done && w.results.length === 5, 'Wait: all 5 done');
  w.results.forEach((r, i) => check(r.task_id === started.task_ids[i] &&
      r.state === 'TASK_STATE_SUCCEEDED' && r.response.completion.includes(`started from node ${i}`),
      `Wait result ${i} in request order`));

  try {
    await unary('GetStatus', { session_id: 'local:s999999' });
    check(false, 'unknown session fails');
  } catch (e) {
    check(e.code === grpc.status.NOT_FOUND && e.details.includes('local:s999999'),
          'unknown session -> NOT_FOUND naming it');
  }
  const closed = await unary('CloseSession', { session_id: sid });
  check(closed.status.succeeded === 30 && closed.status.in_progress === 0, 'CloseSession final status');
  console.log('node interop: all checks passed');
  client.close();
}

main().catch((e) => { console.error('FAIL:', e.message || e); process.exit(1); });
