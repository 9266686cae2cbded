# SPDX-License-Identifier: MIT
"""The Node.js SDK (sdk/node): its node:test suite against a real magsd, the
`image` option against one, and the package as npm would ship it (npm pack,
offline install, import and require, types; tsc when one is installed)."""
import glob
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDK = os.path.join(ROOT, "sdk", "node")
NODE = shutil.which("node")
NPM = shutil.which("npm")
TSC = shutil.which("tsc")

needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
needs_npm = pytest.mark.skipif(NODE is None or NPM is None, reason="node or npm is not installed")


def clean_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGS_", "NODE_", "npm_"))}
    env["HOME"] = home
    env.update(extra)
    return env


def node_test_args():
    """node --test over the suite's files, one file at a time where node can."""
    files = sorted(glob.glob(os.path.join(SDK, "test", "*.test.mjs")) + glob.glob(os.path.join(SDK, "test", "*.test.cjs")))
    assert files, "no tests in sdk/node/test"
    args = [NODE, "--test"]
    probe = subprocess.run([NODE, "--test-concurrency=1", "-e", "0"], capture_output=True)
    if probe.returncode == 0:
        args.append("--test-concurrency=1")  # VMs under TCG: one test file at a time
    return args + files


@needs_node
def test_node_sdk_suite(magsd, mags_tmp):
    home = tempfile.mkdtemp(prefix="h", dir=mags_tmp)
    env = clean_env(home, MAGS_API_URL=magsd.url, MAGS_TOKEN=magsd.token)
    r = subprocess.run(node_test_args(), cwd=SDK, env=env, capture_output=True, text=True, timeout=900)
    out = r.stdout + r.stderr
    assert r.returncode == 0, "node --test failed (%d):\n%s\n---- magsd log (tail) ----\n%s" % (
        r.returncode, out[-20000:], magsd.log()[-4000:])
    assert "# fail 0" in out, out[-20000:]


# Guest images (issue 8): a job on the "busybox" image, the default image a
# submit without one resolves to, an unknown image's 400, and a schedule's image.
IMAGES_SCRIPT = """
import { Mags, BadRequestError, ConflictError } from 'SDK_URL';
const mags = new Mags();
const out = {};
const health = await (await fetch(`${process.env.MAGS_API_URL}/api/v1/health`)).json();
out.health = { images: health.images, default_image: health.default_image };
const job = await mags.run({ script: 'echo on-busybox', image: 'busybox', ephemeral: true });
out.job = { image: job.image, raw: job.raw.image, status: job.status, exitCode: job.exitCode, logs: job.logs };
out.got = (await mags.get(job.id)).image;
out.listed = (await mags.list({ limit: 1 })).map((j) => [j.id === job.id, j.image]);
const plain = await mags.run({ script: 'true', ephemeral: true, wait: false });
out.plain = plain.image;
try {
  await plain.stop(); // only its resolved image matters here
} catch (e) {
  if (!(e instanceof ConflictError)) throw e; // it ended already
}
try {
  await mags.run({ script: 'true', image: 'no-such-image', wait: false });
  out.unknown = null;
} catch (e) {
  out.unknown = { cls: e.constructor.name, bad: e instanceof BadRequestError, status: e.status, message: e.message };
}
const cron = await mags.cron.create({ expression: '0 3 1 1 *', script: 'date', image: 'busybox' });
out.cron = cron.options.image;
await mags.cron.delete(cron.id);
console.log(JSON.stringify(out));
"""


@needs_node
def test_node_sdk_image(magsd, mags_tmp):
    home = tempfile.mkdtemp(prefix="h", dir=mags_tmp)
    env = clean_env(home, MAGS_API_URL=magsd.url, MAGS_TOKEN=magsd.token)
    path = os.path.join(mags_tmp, "images.mjs")
    with open(path, "w") as f:
        f.write(IMAGES_SCRIPT.replace("SDK_URL", pathlib.Path(SDK, "lib", "index.mjs").as_uri()))
    r = subprocess.run([NODE, path], cwd=mags_tmp, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, "node: %s%s\n---- magsd log (tail) ----\n%s" % (r.stdout, r.stderr, magsd.log()[-4000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    health = out["health"]
    assert "busybox" in health["images"] and health["default_image"] in health["images"], health
    assert out["job"] == {"image": "busybox", "raw": "busybox", "status": "completed", "exitCode": 0,
                          "logs": "on-busybox\n"}, out
    assert out["got"] == "busybox" and out["listed"] == [[True, "busybox"]], out
    assert out["plain"] == health["default_image"], out  # resolved at submit
    u = out["unknown"]
    assert u and u["cls"] == "BadRequestError" and u["bad"] and u["status"] == 400, out
    assert "image" in u["message"] and "busybox" in u["message"], u  # names the field, lists the images
    assert out["cron"] == "busybox", out


PROBE_ESM = """
import { Mags, NotFoundError, MagsError } from '@magpiecloud/mags';
const m = new Mags({ token: 't', apiUrl: 'http://127.0.0.1:7557/api/v1' });
if (m.apiUrl !== 'http://127.0.0.1:7557' || !(new NotFoundError('x') instanceof MagsError)) process.exit(1);
console.log('esm ok');
"""
PROBE_CJS = """
const { Mags, NotFoundError, MagsError } = require('@magpiecloud/mags');
const m = new Mags({ token: 't' });
if (typeof m.run !== 'function' || !(new NotFoundError('x') instanceof MagsError)) process.exit(1);
console.log('cjs ok');
"""
TS_ESM = """
import { Mags, Job, NotFoundError, type RunOptions, type ExecResult, type Process, type FileInfo } from '@magpiecloud/mags';
export async function main(): Promise<string> {
  const mags = new Mags();
  const opts: RunOptions = { script: 'npm start', workspace: 'myapp', persist: true, url: true, files: ['a', 'b'], image: 'busybox' };
  const app: Job = await mags.run(opts);
  const job = await mags.runAndWait('echo hi', { timeout: 30 });
  for await (const e of mags.streamLogs(job.id)) { const s: string = e.data; void s; }
  const st: 'queued' | 'running' | 'completed' | 'failed' = await mags.status(app.id);
  await mags.update(app.id, { alwaysOn: false });
  const ws = await mags.workspace.list();
  try { await mags.stop(app.id); } catch (e) { if (e instanceof NotFoundError) return String(e.status); }
  const image: string | null = job.image;
  return st + ws.length + (app.url ?? '') + job.logs + (image ?? '') + (job.raw.image ?? '');
}
export async function sandbox(): Promise<string> {
  const mags = new Mags();
  const box: Job = await mags.newSandbox('box', { persist: true });
  const r: ExecResult = await mags.exec(box, ['echo', 'hi'], { env: { A: 'b' }, stdin: 'x', timeout: 5 });
  const p: Process = await mags.spawn('box', 'bash -l', { tty: true, cols: 100, rows: 30 });
  for await (const ev of mags.processOutput('box', p, { offset: 'end', follow: true })) {
    if (ev.type === 'stdout') { const n: number = ev.data.length + ev.offset; void n; }
    if (ev.type === 'exit') { const c: number | null = ev.exitCode; void c; }
  }
  await mags.sendStdin('box', p.id, 'exit 3\\n', { eof: true });
  const w: Process = await mags.waitProcess('box', p, { timeout: 3 });
  const fi: FileInfo = await mags.files.write('box', '/root/a', 'text', { mode: 0o600 });
  const data = await mags.files.read('box', '/root/a');
  for await (const c of await mags.files.readStream('box', '/root/a')) { void c.length; }
  const watch = await mags.files.watch('box', '/root', { recursive: true });
  for await (const ev of watch) { if (ev.type === 'create') await watch.close(); }
  return r.stdout.toString() + r.exitCode + w.status + fi.mode + data.length + (await mags.files.list('box')).length;
}
"""
TS_CJS = """
import mags = require('@magpiecloud/mags');
export const client: mags.Mags = new mags.Mags({ token: 't' });
export const p: Promise<string> = client.logs('id');
export const e: Promise<mags.ExecResult> = client.exec('box', 'ls');
export const f: Promise<mags.FileInfo[]> = client.files.list('box', '/root');
"""


def npm_env(home):
    return clean_env(home, npm_config_cache=os.path.join(home, ".npm"), npm_config_update_notifier="false",
                     npm_config_fund="false", npm_config_audit="false")


@pytest.fixture(scope="module")
def packed_app():
    """sdk/node packed with npm pack and installed offline into a fresh app dir."""
    tmp = tempfile.mkdtemp(prefix="mags-npm-")
    try:
        home = os.path.join(tmp, "home")
        os.makedirs(home)
        env = npm_env(home)
        packdir = os.path.join(tmp, "pack")
        os.makedirs(packdir)
        r = subprocess.run([NPM, "pack", "--pack-destination", packdir], cwd=SDK, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, "npm pack: %s%s" % (r.stdout, r.stderr)
        tgz = glob.glob(os.path.join(packdir, "*mags-*.tgz"))
        assert len(tgz) == 1, os.listdir(packdir)
        app = os.path.join(tmp, "app")
        os.makedirs(app)
        with open(os.path.join(app, "package.json"), "w") as f:
            f.write('{"name": "probe", "version": "1.0.0", "private": true}\n')
        r = subprocess.run([NPM, "install", "--offline", "--no-audit", "--no-fund", tgz[0]], cwd=app, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, "npm install --offline: %s%s" % (r.stdout, r.stderr)
        yield app, env
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@needs_npm
def test_node_sdk_npm_pack_installs_offline(packed_app):
    app, env = packed_app
    pkg = os.path.join(app, "node_modules", "@magpiecloud", "mags")
    for rel in ("package.json", "README.md", "lib/index.js", "lib/index.mjs", "lib/index.d.ts", "lib/index.d.mts"):
        assert os.path.isfile(os.path.join(pkg, rel)), rel
    assert not os.path.exists(os.path.join(pkg, "test")), "tests are not part of the package"
    assert not os.path.exists(os.path.join(pkg, "node_modules")), "the package has no dependencies"
    with open(os.path.join(app, "probe.mjs"), "w") as f:
        f.write(PROBE_ESM)
    with open(os.path.join(app, "probe.cjs"), "w") as f:
        f.write(PROBE_CJS)
    for probe, want in (("probe.mjs", "esm ok"), ("probe.cjs", "cjs ok")):
        r = subprocess.run([NODE, probe], cwd=app, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and want in r.stdout, "%s: %s%s" % (probe, r.stdout, r.stderr)


@needs_npm
@pytest.mark.skipif(TSC is None, reason="tsc is not installed: the .d.ts files are not type-checked")
def test_node_sdk_types_check_with_tsc(packed_app):
    app, env = packed_app
    with open(os.path.join(app, "esm.mts"), "w") as f:
        f.write(TS_ESM)
    with open(os.path.join(app, "cjs.cts"), "w") as f:
        f.write(TS_CJS)
    r = subprocess.run([TSC, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext",
                        "--target", "es2022", "esm.mts", "cjs.cts"],
                       cwd=app, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, "tsc: %s%s" % (r.stdout, r.stderr)
