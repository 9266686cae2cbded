// SPDX-License-Identifier: MIT
// A long-lived sandbox against a real magsd: exec (exit codes, both streams,
// stdin), background processes (list, output later, signal, wait), a tty
// shell driven through its stdin, and files (a 10 MB binary round trip
// through streams, stat/list/mkdir/remove, errors, watch).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Mags, Job, BadRequestError, ConflictError, NotFoundError } from '@magpiecloud/mags';
import { needsMagsd, tempDir, until } from './_helpers.mjs';

const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const text = async (it) => {
  const parts = [];
  for await (const ev of it) if (ev.type === 'stdout' || ev.type === 'stderr') parts.push(ev.data);
  return Buffer.concat(parts).toString();
};

test('sandbox: exec, background processes, a tty shell', { ...needsMagsd, timeout: 300000 }, async () => {
  const mags = new Mags();
  const box = await mags.newSandbox('nodebox');
  assert.ok(box instanceof Job);
  assert.equal(box.status, 'running');
  assert.equal((await mags.newSandbox('nodebox')).id, box.id);

  let r = await mags.exec('nodebox', 'echo out; echo err >&2; exit 3');
  assert.deepEqual([r.exitCode, r.stdout.toString(), r.stderr.toString()], [3, 'out\n', 'err\n']);
  assert.equal(r.process.status, 'exited');
  r = await mags.exec(box, 'cat; echo; pwd; echo "$X"', { stdin: 'from-stdin', cwd: '/tmp', env: { X: 'x y' } });
  assert.equal(r.stdout.toString(), 'from-stdin\n/tmp\nx y\n');
  const big = crypto.randomBytes(3 * 1024 * 1024);
  r = await mags.exec(box.id, 'sha256sum', { stdin: big });
  assert.equal(r.stdout.toString().split(' ')[0], sha(big));
  r = await mags.exec('nodebox', ['sh', '-c', 'echo "$0" "$1"', 'a b', "c'd"]);
  assert.equal(r.stdout.toString(), "a b c'd\n");
  r = await mags.exec('nodebox', 'sleep 30', { timeout: 1 });
  assert.equal(r.exitCode, 124);
  assert.equal(r.process.timedOut, true);
  await assert.rejects(mags.exec('no-such-box', 'true'), NotFoundError);

  // a background process
  const p = await mags.spawn('nodebox', "trap 'echo got-term; exit 7' TERM; echo begin; while :; do sleep 0.2; done");
  assert.equal(p.status, 'running');
  assert.ok((await mags.processes('nodebox')).some((x) => x.id === p.id));
  await until('its first line', async () => (await mags.process('nodebox', p)).outputBytes >= 6);
  assert.equal(await text(mags.processOutput('nodebox', p)), 'begin\n');
  assert.equal((await mags.waitProcess('nodebox', p, { timeout: 1 })).status, 'running');
  // from just after 'begin\n': the follow may reach magsd after the kill's output
  const follow = mags.processOutput('nodebox', p.id, { offset: 6, follow: true });
  const followed = (async () => {
    const evs = [];
    for await (const ev of follow) evs.push(ev);
    return evs;
  })();
  await mags.kill('nodebox', p);
  const evs = await followed;
  assert.equal(Buffer.concat(evs.filter((e) => e.type === 'stdout').map((e) => e.data)).toString(), 'got-term\n');
  assert.equal(evs.at(-1).type, 'exit');
  assert.equal(evs.at(-1).exitCode, 7);
  const done = await mags.waitProcess('nodebox', p);
  assert.deepEqual([done.status, done.exitCode, done.done], ['exited', 7, true]);
  await assert.rejects(mags.kill('nodebox', p, 'INT'), ConflictError);
  await assert.rejects(mags.sendStdin('nodebox', p, 'x'), ConflictError);
  await mags.deleteProcess('nodebox', p);
  await assert.rejects(mags.process('nodebox', p), NotFoundError);

  // a tty shell: its input through sendStdin, resized, exit code 3
  const t = await mags.spawn('nodebox', '/bin/sh', { tty: true });
  assert.deepEqual([t.tty, t.stdin], [true, true]);
  assert.equal((await mags.resize('nodebox', t, 120, 40)).cols, 120);
  await mags.sendStdin('nodebox', t, 'stty size; echo hi\n');
  await until('the shell\'s answer', async () => (await text(mags.processOutput('nodebox', t))).includes('hi\r\n'));
  await mags.sendStdin('nodebox', t, 'exit 3\n');
  const end = await mags.waitProcess('nodebox', t, { timeout: 60 });
  assert.deepEqual([end.status, end.exitCode], ['exited', 3]);
  assert.match(await text(mags.processOutput('nodebox', t)), /40 120/);

  await mags.stop(box.id);
  await assert.rejects(mags.exec(box, 'true'), ConflictError); // by its id: the job has ended
  await assert.rejects(mags.exec('nodebox', 'true'), NotFoundError); // by name: no running job
});

test('sandbox files: 10 MB through streams, stat/list/mkdir/remove, errors, watch', { ...needsMagsd, timeout: 300000 }, async () => {
  const mags = new Mags();
  const box = await mags.newSandbox('nodefiles');
  const dir = tempDir();
  const blob = crypto.randomBytes(10 * 1000 * 1000);
  const src = path.join(dir, 'blob.bin');
  fs.writeFileSync(src, blob);
  const info = await mags.files.write('nodefiles', '/root/data/blob.bin', fs.createReadStream(src), { mode: 0o600 });
  assert.deepEqual([info.path, info.type, info.size, info.mode], ['/root/data/blob.bin', 'file', blob.length, 0o600]);
  const back = path.join(dir, 'back.bin');
  await pipeline(await mags.files.readStream(box, 'data/blob.bin'), fs.createWriteStream(back));
  assert.equal(sha(fs.readFileSync(back)), sha(blob));
  assert.equal((await mags.exec('nodefiles', 'sha256sum /root/data/blob.bin')).stdout.toString().split(' ')[0], sha(blob));
  assert.equal(sha(await mags.files.read('nodefiles', '/root/data/blob.bin')), sha(blob));
  await mags.files.write('nodefiles', 'hello.txt', 'héllo\n');
  assert.equal((await mags.files.read('nodefiles', '/root/hello.txt')).toString(), 'héllo\n');
  async function* gen() {
    for (let i = 0; i < 100; i++) yield Buffer.from('chunk ');
  }
  assert.equal((await mags.files.write('nodefiles', 'gen.txt', gen())).size, 600); // chunked

  const st = await mags.files.stat('nodefiles', 'hello.txt');
  assert.deepEqual([st.name, st.path, st.type, st.size, st.mode], ['hello.txt', '/root/hello.txt', 'file', 7, 0o644]);
  assert.equal((await mags.files.mkdir('nodefiles', '/root/a/b/c')).type, 'dir');
  await mags.files.mkdir('nodefiles', '/root/a/b/c');
  await assert.rejects(mags.files.mkdir('nodefiles', '/root/a/b/c', { parents: false }), ConflictError);
  const names = (await mags.files.list('nodefiles', '/root')).map((e) => e.name);
  assert.deepEqual(names, [...names].sort());
  for (const n of ['a', 'data', 'gen.txt', 'hello.txt']) assert.ok(names.includes(n), names.join(' '));
  await assert.rejects(mags.files.remove('nodefiles', '/root/a'), ConflictError);
  await mags.files.remove('nodefiles', '/root/a', { recursive: true });
  await assert.rejects(mags.files.stat('nodefiles', '/root/a'), NotFoundError);
  await assert.rejects(mags.files.read('nodefiles', '/root/missing'), NotFoundError);
  await assert.rejects(mags.files.read('nodefiles', '../etc/passwd'), BadRequestError);
  await assert.rejects(mags.files.write('nodefiles', '/root/../x', Buffer.alloc(4 << 20)), BadRequestError);

  // watch: in place when it resolves; a command's new file is a create event
  const w = await mags.files.watch('nodefiles', '/root');
  await mags.exec('nodefiles', 'echo > /root/made.txt');
  await mags.files.write('nodefiles', '/root/put.txt', 'x');
  const seen = [];
  for await (const ev of w) {
    seen.push([ev.type, ev.path]);
    if (ev.path === '/root/put.txt') break;
  }
  assert.ok(seen.some(([ty, p]) => ty === 'create' && p === '/root/made.txt'), JSON.stringify(seen));
  assert.ok(seen.some(([ty, p]) => (ty === 'create' || ty === 'move_to') && p === '/root/put.txt'), JSON.stringify(seen));
  const w2 = await mags.files.watch('nodefiles', '/root', { recursive: true });
  setTimeout(() => w2.close(), 300);
  for await (const ev of w2) assert.fail(`no event expected: ${JSON.stringify(ev)}`);
  await mags.stop(box.id);
});
