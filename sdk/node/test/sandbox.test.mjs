// SPDX-License-Identifier: MIT
// The sandbox methods (exec, processes, files) without a magsd: how their
// arguments become requests, and how NDJSON streams, base64 output, raw
// bodies and errors are read, against a small local HTTP server that records
// each request and answers as the handler given says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { Mags, Job, BadRequestError, ConflictError, NotFoundError, MagsConnectionError } from '@magpiecloud/mags';

const JOB_ID = '11111111-2222-4333-8444-555555555555';
const PROC = {
  id: 3, command: 'echo hi', tty: false, stdin: false, detached: false, cwd: '/root', status: 'running',
  exit_code: null, signal: null, timed_out: false, started_at: '2026-01-01T00:00:00Z', ended_at: null,
  output_bytes: 0, cols: 80, rows: 24,
};
const b64 = (s) => Buffer.from(s).toString('base64');
const line = (o) => `${JSON.stringify(o)}\n`;

/* Runs fn(client, seen) against a server whose handler(req, body, res) answers; seen lists { method, path, query, headers, body }. */
async function withServer(handler, fn) {
  const seen = [];
  const srv = http.createServer((req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const u = new URL(req.url, 'http://x');
      const body = Buffer.concat(parts);
      const entry = { method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers, body };
      seen.push(entry);
      handler(entry, res);
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const client = new Mags({ token: 'tok', apiUrl: `http://127.0.0.1:${srv.address().port}` });
  try {
    await fn(client, seen);
  } finally {
    srv.closeAllConnections?.();
    await new Promise((r) => srv.close(r));
  }
  return seen;
}

const json = (res, status, obj) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(obj));
};
const jsonBody = (e) => JSON.parse(e.body.toString('utf8'));

test('exec: the request body, the NDJSON stream read as it comes, base64 output, exit code', async () => {
  const seen = await withServer((e, res) => {
    if (e.path.endsWith('/exec')) {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(line({ type: 'start', process: { ...PROC, stdin: true } }));
      res.write(line({ type: 'stdout', offset: 0, data: b64('out\n') }));
      res.write('\n'); // a keep-alive
      setTimeout(() => {
        res.write(line({ type: 'stderr', offset: 4, data: b64('err\n') }));
        res.write(line({ type: 'stdout', offset: 8, data: Buffer.from([0, 255]).toString('base64') }));
        res.end(line({ type: 'exit', offset: 10, exit_code: 3, signal: null, timed_out: false, status: 'exited' }));
      }, 50);
    } else if (e.path.endsWith('/processes/3/stdin')) {
      json(res, 200, { bytes: e.body.length });
    } else json(res, 404, { error: 'no', code: 404 });
  }, async (mags) => {
    const got = [];
    const r = await mags.exec('box', ['sh', '-c', 'cat; echo "$X"'], {
      cwd: '/tmp', env: { X: 'x y' }, timeout: 1.5, stdin: 'input', onOutput: (ev) => got.push(ev.type),
    });
    assert.equal(r.exitCode, 3);
    assert.deepEqual(r.stdout, Buffer.from([...Buffer.from('out\n'), 0, 255]));
    assert.equal(r.stderr.toString(), 'err\n');
    assert.equal(r.process.id, 3);
    assert.equal(r.process.status, 'exited');
    assert.equal(r.process.exitCode, 3);
    assert.equal(r.process.outputBytes, 10);
    assert.deepEqual(got, ['stdout', 'stderr', 'stdout']);
  });
  const ex = seen.find((e) => e.path.endsWith('/exec'));
  assert.equal(ex.method, 'POST');
  assert.equal(ex.path, '/api/v1/mags-jobs/box/exec');
  assert.equal(ex.headers.authorization, 'Bearer tok');
  assert.deepEqual(jsonBody(ex), { command: "sh -c 'cat; echo \"$X\"'", stdin: true, cwd: '/tmp', env: { X: 'x y' }, timeout: 2 });
  const si = seen.find((e) => e.path.endsWith('/stdin'));
  assert.deepEqual([si.method, si.query, si.body.toString(), si.headers['content-type']], ['POST', { eof: '1' }, 'input', 'application/octet-stream']);
});

test('exec: no stdin sends no stdin flag; a stream that breaks before exit rejects; errors map', async () => {
  await withServer((e, res) => {
    if (e.path === '/api/v1/mags-jobs/gone/exec') return json(res, 409, { error: 'job gone already completed', code: 409 });
    if (e.path === '/api/v1/mags-jobs/nope/exec') return json(res, 404, { error: 'job "nope" not found', code: 404 });
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(line({ type: 'start', process: PROC }));
    res.end(line({ type: 'stdout', offset: 0, data: b64('x') }));
  }, async (mags, seen) => {
    await assert.rejects(mags.exec('box', 'true'), MagsConnectionError);
    assert.deepEqual(jsonBody(seen[0]), { command: 'true' });
    await assert.rejects(mags.exec('gone', 'true'), (e) => e instanceof ConflictError && e.status === 409 && /completed/.test(e.message));
    await assert.rejects(mags.exec('nope', 'true'), NotFoundError);
    // a Job is its id
    await assert.rejects(mags.exec(new Job(mags, { id: JOB_ID, status: 'running' }), 'true'), MagsConnectionError);
    assert.equal(seen.at(-1).path, `/api/v1/mags-jobs/${JOB_ID}/exec`);
  });
});

test('spawn, processes, process, kill, resize, wait, delete: paths and bodies', async () => {
  const seen = await withServer((e, res) => {
    if (e.path.endsWith('/exec')) return json(res, 201, { ...PROC, detached: true, tty: true, stdin: true });
    if (e.path.endsWith('/processes')) return json(res, 200, { processes: [PROC, { ...PROC, id: 4, status: 'exited', exit_code: 0 }] });
    if (e.path.endsWith('/wait')) return json(res, 200, { ...PROC, status: 'exited', exit_code: 130, signal: 2 });
    if (e.path.endsWith('/resize')) return json(res, 409, { error: 'process 3 has no terminal', code: 409 });
    if (e.method === 'DELETE') return json(res, 200, {});
    return json(res, 200, PROC);
  }, async (mags) => {
    const p = await mags.spawn('box', 'bash -l', { tty: true, cols: 100, rows: 30, env: { TERM: 'xterm' } });
    assert.deepEqual([p.id, p.tty, p.stdin, p.detached, p.exitCode, p.done, p.raw.cols], [3, true, true, true, null, false, 80]);
    const list = await mags.processes('box');
    assert.deepEqual(list.map((x) => [x.id, x.status, x.exitCode, x.done]), [[3, 'running', null, false], [4, 'exited', 0, true]]);
    assert.equal((await mags.process('box', 3)).startedAt, '2026-01-01T00:00:00Z');
    await mags.kill('box', p);
    await mags.kill('box', 3, 'INT');
    await mags.kill('box', 3, 9);
    await assert.rejects(mags.resize('box', 3, 120, 40), ConflictError);
    const w = await mags.waitProcess('box', 3, { timeout: 5 });
    assert.deepEqual([w.status, w.exitCode, w.signal, w.done], ['exited', 130, 2, true]);
    await mags.deleteProcess('box', 3);
  });
  const req = seen.map((e) => [e.method, e.path.replace('/api/v1/mags-jobs/box', ''), e.body.length ? jsonBody(e) : null, e.query]);
  assert.deepEqual(req, [
    ['POST', '/exec', { command: 'bash -l', tty: true, cols: 100, rows: 30, env: { TERM: 'xterm' }, detach: true }, {}],
    ['GET', '/processes', null, {}],
    ['GET', '/processes/3', null, {}],
    ['POST', '/processes/3/signal', { signal: 'TERM' }, {}],
    ['POST', '/processes/3/signal', { signal: 'INT' }, {}],
    ['POST', '/processes/3/signal', { signal: 9 }, {}],
    ['POST', '/processes/3/resize', { cols: 120, rows: 40 }, {}],
    ['GET', '/processes/3/wait', null, { timeout: '5' }],
    ['DELETE', '/processes/3', null, {}],
  ]);
});

test('processOutput: offset and follow in the query; events decoded; breaking out closes the request', async () => {
  let closed = false;
  const seen = await withServer((e, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (e.query.follow === '1') {
      res.write(line({ type: 'lost', offset: 100, bytes: 100 }));
      res.write(line({ type: 'stdout', offset: 100, data: b64('tick\n') }));
      res.on('close', () => { closed = true; });
      return; // never ends: the client leaves
    }
    res.write(line({ type: 'stdout', offset: 5, data: b64('hello') }));
    res.end(line({ type: 'end', offset: 10 }));
  }, async (mags) => {
    const evs = [];
    for await (const ev of mags.processOutput('box', 3, { offset: 5 })) evs.push(ev);
    assert.deepEqual(evs.map((e) => [e.type, e.offset, e.data && e.data.toString()]), [['stdout', 5, 'hello'], ['end', 10, undefined]]);
    const followed = [];
    for await (const ev of mags.processOutput('box', 3, { offset: 'end', follow: true })) {
      followed.push(ev);
      if (ev.type === 'stdout') break;
    }
    assert.deepEqual(followed.map((e) => [e.type, e.bytes]), [['lost', 100], ['stdout', undefined]]);
    for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(closed, 'leaving the loop ends the request');
  });
  assert.deepEqual(seen.map((e) => e.query), [{ offset: '5' }, { offset: 'end', follow: '1' }]);
  assert.throws(() => new Mags({ token: 't' }).processOutput('box', 3, { offset: -1 }), TypeError);
});

test('files: read, readStream, write (Buffer, string, stream), list, stat, mkdir, remove; errors', async () => {
  const store = new Map();
  const info = (p, size, type = 'file') => ({ name: p.split('/').pop(), path: p, type, size, mode: type === 'dir' ? '0755' : '0640', mtime: '2026-01-01T00:00:00Z' });
  const seen = await withServer((e, res) => {
    const p = e.query.path;
    if (p && p.split('/').includes('..')) return json(res, 400, { error: `bad path ${p}`, code: 400 });
    if (e.path.endsWith('/files') && e.method === 'PUT') {
      store.set(p, e.body);
      return json(res, 200, info(p, e.body.length));
    }
    if (e.path.endsWith('/files') && e.method === 'GET') {
      if (!store.has(p)) return json(res, 404, { error: `${p}: no such file`, code: 404 });
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      return res.end(store.get(p));
    }
    if (e.path.endsWith('/files/list')) return json(res, 200, { path: p, entries: [info('/root/a', 1), info('/root/d', 4096, 'dir')] });
    if (e.path.endsWith('/files/stat')) return json(res, 200, info(p, 5));
    if (e.path.endsWith('/files/mkdir')) return json(res, 201, info(jsonBody(e).path, 4096, 'dir'));
    if (e.method === 'DELETE') return json(res, 200, {});
    return json(res, 404, { error: 'no such endpoint', code: 404 });
  }, async (mags) => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0xab);
    const w = await mags.files.write('box', '/root/big.bin', big, { mode: 0o640 });
    assert.deepEqual([w.path, w.size, w.mode, w.type], ['/root/big.bin', big.length, 0o640, 'file']);
    assert.deepEqual(await mags.files.read('box', '/root/big.bin'), big);
    await mags.files.write('box', 'a.txt', 'héllo');
    assert.equal((await mags.files.read('box', 'a.txt')).toString(), 'héllo');
    // a stream of unknown size goes chunked; with { size } it has a Content-Length
    await mags.files.write('box', 's1', Readable.from([Buffer.from('ab'), Buffer.from('cd')]));
    await mags.files.write('box', 's2', Readable.from([Buffer.from('ab'), Buffer.from('cd')]), { size: 4 });
    const chunks = [];
    for await (const c of await mags.files.readStream('box', 's1')) chunks.push(c);
    assert.equal(Buffer.concat(chunks).toString(), 'abcd');
    const list = await mags.files.list('box', '/root');
    assert.deepEqual(list.map((f) => [f.name, f.type, f.mode]), [['a', 'file', 0o640], ['d', 'dir', 0o755]]);
    assert.equal((await mags.files.stat('box', '/root/a')).size, 5);
    assert.equal((await mags.files.mkdir('box', '/root/x/y')).type, 'dir');
    await mags.files.mkdir('box', '/root/z', { parents: false });
    await mags.files.remove('box', '/root/x', { recursive: true });
    await mags.files.remove('box', '/root/a');
    await assert.rejects(mags.files.read('box', '/root/missing'), NotFoundError);
    await assert.rejects(mags.files.readStream('box', '../etc/passwd'), BadRequestError);
    await assert.rejects(mags.files.write('box', '/root/../x', big), BadRequestError);
    await assert.rejects(mags.files.write('box', 'x', 5), TypeError);
    await assert.rejects(mags.files.write('box', 'x', 'y', { mode: '644' }), TypeError);
  });
  const puts = seen.filter((e) => e.method === 'PUT');
  assert.deepEqual(puts[0].query, { path: '/root/big.bin', mode: '0640' });
  assert.equal(puts[0].headers['content-length'], String(3 * 1024 * 1024 + 7));
  assert.equal(puts[1].query.mode, '0644');
  assert.equal(puts[2].headers['transfer-encoding'], 'chunked');
  assert.equal(puts[3].headers['content-length'], '4');
  const mk = seen.filter((e) => e.path.endsWith('/mkdir')).map(jsonBody);
  assert.deepEqual(mk, [{ path: '/root/x/y', parents: true }, { path: '/root/z', parents: false }]);
  const rm = seen.filter((e) => e.method === 'DELETE').map((e) => e.query);
  assert.deepEqual(rm, [{ path: '/root/x', recursive: '1' }, { path: '/root/a' }]);
});

test('files.watch: resolves after the ready line; events; close() ends it', async () => {
  let closed = false;
  let resRef;
  await withServer((e, res) => {
    resRef = res;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(line({ type: 'ready' }));
    res.on('close', () => { closed = true; });
    setTimeout(() => res.write(line({ type: 'create', path: '/root/new.txt', dir: false })), 30);
    setTimeout(() => res.write(line({ type: 'create', path: '/root/sub', dir: true })), 60);
  }, async (mags, seen) => {
    const w = await mags.files.watch('box', '/root', { recursive: true });
    assert.deepEqual(seen[0].query, { path: '/root', recursive: '1' });
    const got = [];
    for await (const ev of w) {
      got.push([ev.type, ev.path, ev.dir]);
      if (got.length === 2) setTimeout(() => w.close(), 10); // close while a next() waits
    }
    assert.deepEqual(got, [['create', '/root/new.txt', false], ['create', '/root/sub', true]]);
    for (let i = 0; i < 50 && !closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(closed && resRef, 'close() ends the request');
  });
});

test('newSandbox: takes the running job of the workspace, else submits one and waits for it to run', async () => {
  let polls = 0;
  const seen = await withServer((e, res) => {
    if (e.path === '/api/v1/mags-jobs' && e.method === 'GET') return json(res, 200, { jobs: [] });
    if (e.path === '/api/v1/mags-jobs' && e.method === 'POST') return json(res, 201, { id: JOB_ID, status: 'queued', workspace: 'box' });
    polls += 1;
    return json(res, 200, { id: JOB_ID, status: polls > 1 ? 'running' : 'queued', workspace: 'box' });
  }, async (mags) => {
    const job = await mags.newSandbox('box', { persist: true, image: 'busybox' });
    assert.ok(job instanceof Job);
    assert.equal(job.status, 'running');
  });
  assert.deepEqual(seen.filter((e) => e.method === 'GET' && e.path === '/api/v1/mags-jobs').map((e) => e.query),
    [{ workspace: 'box', status: 'running', limit: '1' }, { workspace: 'box', status: 'queued', limit: '1' }]);
  const post = seen.find((e) => e.method === 'POST');
  assert.deepEqual(jsonBody(post), { script: 'exec sleep 2147483647', workspace: 'box', persist: true, image: 'busybox' });
});

test('bad arguments are TypeErrors before anything is sent', async () => {
  const mags = new Mags({ token: 't', apiUrl: 'http://127.0.0.1:9' });
  await assert.rejects(mags.exec('box', ''), TypeError);
  await assert.rejects(mags.exec('box', 'x', { env: { A: 1 } }), TypeError);
  await assert.rejects(mags.exec('box', 'x', { nope: 1 }), TypeError);
  await assert.rejects(mags.exec('', 'x'), TypeError);
  await assert.rejects(mags.spawn('box', 'x', { cols: '80' }), TypeError);
  await assert.rejects(mags.process('box', 'one'), TypeError);
  await assert.rejects(mags.kill('box', 1, 2.5), TypeError);
  await assert.rejects(mags.sendStdin('box', 1, 42), TypeError);
  await assert.rejects(mags.files.list('box', ''), TypeError);
  await assert.rejects(mags.files.watch('box', '/root', { recursive: 'yes' }), TypeError);
  await assert.rejects(mags.newSandbox(''), TypeError);
});
