// SPDX-License-Identifier: MIT
/*
 * @magpiecloud/mags: the Node.js client of magsd's REST API (/api/v1).
 *
 * This file is the whole library, written as CommonJS so that `require` gets
 * it as it is; index.mjs re-exports the same objects for `import` (one copy of
 * every class, so `instanceof` works whichever way it was loaded). No
 * dependencies: global fetch (Node 18+), node:fs, node:os, node:path, and
 * node:http(s) for the streams that may stay quiet a long time (exec output,
 * followed process output, file watches: fetch would time them out).
 */
'use strict';

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { Readable } = require('node:stream');

const VERSION = '0.1.0';
const DEFAULT_API_URL = 'http://127.0.0.1:7557';
const FILE_MAX = 1024 * 1024 * 1024; /* magsd's limit on one upload */
const BUFFERED_UPLOAD_MAX = 16 * 1024 * 1024; /* larger files are streamed from disk */
const NEW_SCRIPT = 'exec sleep 2147483647'; /* a sandbox from newSandbox sleeps until stopped (as `mags new`) */
const STDIN_CHUNK = 1024 * 1024; /* magsd takes at most 1 MiB of stdin per request */
const WAIT_STEP = 300; /* seconds of one GET /processes/:pid/wait when waiting without limit */
const HEARTBEAT_SILENCE_MS = 90000; /* output streams carry a heartbeat every 15 s: longer silence = gone */
const JOB_ID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/* ------------------------------------------------------------------ errors */

class MagsError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number|null, body?: any, cause?: any}} [info]
   */
  constructor(message, info = {}) {
    super(message, info.cause !== undefined ? { cause: info.cause } : undefined);
    this.name = new.target.name;
    /** HTTP status of the reply, or null when there was none. */
    this.status = info.status === undefined ? null : info.status;
    /** The parsed error body ({"error", "code"}), or null. */
    this.body = info.body === undefined ? null : info.body;
  }
}
/** 400 (invalid parameters) and 413 (body too large). */
class BadRequestError extends MagsError {}
/** 401: missing or invalid token; also thrown by `new Mags()` when no token is found. */
class AuthenticationError extends MagsError {}
/** 404: no such job, workspace, alias or schedule (or another user's). */
class NotFoundError extends MagsError {}
/** 409: the resource exists, or is in a state that does not allow the request. */
class ConflictError extends MagsError {}
/** 5xx. */
class ServerError extends MagsError {}
/** magsd could not be reached (refused, reset, DNS, TLS, ...). */
class MagsConnectionError extends MagsError {}
/** A wait (runAndWait, job.wait) ran out of time; the job itself goes on. */
class MagsTimeoutError extends MagsError {
  constructor(message, info = {}) {
    super(message, info);
    this.jobId = info.jobId === undefined ? null : info.jobId;
    this.job = info.job === undefined ? null : info.job;
  }
}

function errorForStatus(status, message, body) {
  const info = { status, body };
  if (status === 400 || status === 413) return new BadRequestError(message, info);
  if (status === 401) return new AuthenticationError(message, info);
  if (status === 404) return new NotFoundError(message, info);
  if (status === 409) return new ConflictError(message, info);
  if (status >= 500) return new ServerError(message, info);
  return new MagsError(message, info);
}

/* ----------------------------------------------------------------- helpers */

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function envValue(name) {
  const v = process.env[name];
  return v ? v : undefined;
}

function normalizeApiUrl(url) {
  let u = String(url).trim();
  for (;;) {
    while (u.endsWith('/')) u = u.slice(0, -1);
    if (u.endsWith('/api/v1')) u = u.slice(0, -7);
    else break;
  }
  if (!/^https?:\/\//i.test(u)) throw new TypeError(`apiUrl must be an http(s) URL, got ${JSON.stringify(String(url))}`);
  return u;
}

function configPath() {
  return path.join(os.homedir(), '.mags', 'config.json');
}

/* ~/.mags/config.json as the CLI writes it; a missing file is an empty config. */
function readConfig() {
  const file = configPath();
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e && (e.code === 'ENOENT' || e.code === 'ENOTDIR')) return {};
    throw new MagsError(`cannot read ${file}: ${e.message}`, { cause: e });
  }
  let cfg;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new MagsError(`${file}: invalid JSON (${e.message})`, { cause: e });
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new MagsError(`${file}: not a JSON object`);
  return cfg;
}

function checkKeys(what, obj, allowed) {
  if (obj === undefined || obj === null) return {};
  if (typeof obj !== 'object' || Array.isArray(obj)) throw new TypeError(`${what} must be an object`);
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) throw new TypeError(`${what}: unknown option "${k}" (known: ${allowed.join(', ')})`);
  }
  return obj;
}

const isSet = (v) => v !== undefined && v !== null;

function checkType(what, name, v, type) {
  if (!isSet(v)) return;
  if (type === 'integer') {
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${what}: ${name} must be a whole number, got ${JSON.stringify(v)}`);
  } else if (type === 'string') {
    if (typeof v !== 'string') throw new TypeError(`${what}: ${name} must be a string, got ${typeof v}`);
  } else if (typeof v !== type) {
    throw new TypeError(`${what}: ${name} must be a ${type}, got ${typeof v}`);
  }
}

function seg(v, what) {
  if (typeof v !== 'string' || !v) throw new TypeError(`${what} must be a non-empty string`);
  return encodeURIComponent(v);
}

/* The job run options and their API names; shared by run and cron. */
const RUN_OPTIONS = {
  script: ['script', 'string'],
  type: ['type', 'string'],
  workspace: ['workspace', 'string'],
  persist: ['persist', 'boolean'],
  url: ['url', 'boolean'],
  port: ['port', 'integer'],
  ssh: ['ssh', 'boolean'],
  sshPublicKey: ['ssh_public_key', 'string'],
  startupCommand: ['startup_command', 'string'],
  startup: ['startup_command', 'string'],
  from: ['from', 'string'],
  ephemeral: ['ephemeral', 'boolean'],
  timeout: ['timeout', 'integer'],
  alwaysOn: ['always_on', 'boolean'],
  idleTimeout: ['idle_timeout', 'integer'],
  image: ['image', 'string'], /* a guest image of magsd's ("debian", "busybox"); not baseImage */
  baseImage: null, /* string (a base to start from) or boolean (make this a base) */
  files: null, /* local paths */
};
const RUN_KEYS = [...Object.keys(RUN_OPTIONS), 'wait'];
const CRON_KEYS = ['expression', 'name', 'timezone', 'enabled',
  ...Object.keys(RUN_OPTIONS).filter((k) => k !== 'alwaysOn' && k !== 'idleTimeout')];

/*
 * Maps camelCase options to an API body. With keepNull (cron updates) a null
 * value is sent as null (the API removes that flag); otherwise null means unset.
 */
function mapRunOptions(what, opts, keepNull) {
  const body = {};
  for (const [key, spec] of Object.entries(RUN_OPTIONS)) {
    if (!spec || !(key in opts)) continue;
    const v = opts[key];
    if (v === undefined || (v === null && !keepNull)) continue;
    checkType(what, key, v, spec[1]);
    body[spec[0]] = v;
  }
  if (isSet(opts.startup) && isSet(opts.startupCommand) && opts.startup !== opts.startupCommand) {
    throw new TypeError(`${what}: startup and startupCommand differ (startup is an alias of startupCommand)`);
  }
  const bi = opts.baseImage;
  if (typeof bi === 'string') {
    if (!bi) throw new TypeError(`${what}: baseImage must not be empty`);
    if (isSet(opts.from) && opts.from !== bi) throw new TypeError(`${what}: baseImage "${bi}" and from "${opts.from}" differ`);
    body.from = bi;
  } else if (bi === true) {
    body.base_image = true;
  } else if (bi === false) {
    if (keepNull) body.base_image = false;
  } else if (bi === null) {
    if (keepNull) body.base_image = null;
  } else if (bi !== undefined) {
    throw new TypeError(`${what}: baseImage must be a workspace name (string) or a boolean`);
  }
  return body;
}

/* Stats local files for upload; checks names before anything is sent. */
async function describeFiles(what, files) {
  if (!isSet(files)) return [];
  const list = typeof files === 'string' ? [files] : files;
  if (!Array.isArray(list)) throw new TypeError(`${what}: files must be an array of local file paths`);
  const out = [];
  const seen = new Map();
  for (const p of list) {
    if (typeof p !== 'string' || !p) throw new TypeError(`${what}: files must be non-empty path strings`);
    const name = path.basename(p);
    if (!name || name === '.' || name === '..') throw new TypeError(`${what}: files: ${p} has no file name`);
    if (seen.has(name)) {
      throw new TypeError(`${what}: files ${seen.get(name)} and ${p} would both be "${name}" in the sandbox`);
    }
    seen.set(name, p);
  }
  for (const p of list) {
    const st = await fsp.stat(p);
    if (!st.isFile()) throw new TypeError(`${what}: files: ${p} is not a regular file`);
    if (st.size > FILE_MAX) throw new RangeError(`${what}: files: ${p} is ${st.size} bytes, more than the 1 GiB limit`);
    out.push({ path: p, name: path.basename(p), size: st.size, mode: st.mode & 0o777 });
  }
  return out;
}

/* Lines of an NDJSON body (a web ReadableStream of bytes). */
async function* ndjsonLines(body) {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      yield line;
    }
  }
  buf += decoder.decode();
  if (buf) yield buf;
}

const ENDED = new Set(['completed', 'failed']);

function joinOutput(entries) {
  let s = '';
  for (const e of entries) if (e.stream === 'stdout' || e.stream === 'stderr') s += e.data;
  return s;
}

/* ------------------------------------------------------- sandbox helpers */

/* The path segment of a sandbox: a Job's id, or a job id / workspace name. */
function sandboxSeg(sandbox) {
  if (sandbox instanceof Job) return encodeURIComponent(sandbox.id);
  if (sandbox && typeof sandbox === 'object' && typeof sandbox.id === 'string' && sandbox.id) return encodeURIComponent(sandbox.id);
  if (typeof sandbox !== 'string' || !sandbox) throw new TypeError('sandbox must be a job id, a Job or a workspace name');
  return encodeURIComponent(sandbox);
}

function pidSeg(pid) {
  const v = pid && typeof pid === 'object' ? pid.id : pid;
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return String(v);
  if (typeof v === 'string' && /^[0-9]+$/.test(v)) return v;
  throw new TypeError(`a process is its id (a positive integer) or a Process object, got ${JSON.stringify(pid)}`);
}

/* A Process from the API's object (camelCase, with raw). */
function toProcess(raw) {
  if (!raw || typeof raw !== 'object' || raw.id === undefined) throw new ServerError(`magsd sent no process object: ${JSON.stringify(raw)}`);
  const nul = (v) => (v === undefined ? null : v);
  return {
    id: raw.id,
    command: raw.command,
    status: raw.status,
    exitCode: nul(raw.exit_code),
    signal: nul(raw.signal),
    timedOut: raw.timed_out === true,
    error: nul(raw.error),
    tty: raw.tty === true,
    stdin: raw.stdin === true,
    detached: raw.detached === true,
    cwd: nul(raw.cwd),
    startedAt: nul(raw.started_at),
    endedAt: nul(raw.ended_at),
    outputBytes: raw.output_bytes || 0,
    cols: nul(raw.cols),
    rows: nul(raw.rows),
    done: raw.status === 'exited' || raw.status === 'lost',
    raw,
  };
}

/* A FileInfo from the API's object: mode as a number (0o644), raw kept. */
function toFileInfo(raw) {
  if (!raw || typeof raw !== 'object' || typeof raw.path !== 'string') throw new ServerError(`magsd sent no file object: ${JSON.stringify(raw)}`);
  const mode = typeof raw.mode === 'string' ? parseInt(raw.mode, 8) : (raw.mode || 0);
  const info = {
    name: raw.name, path: raw.path, type: raw.type, size: raw.size || 0, mode: Number.isNaN(mode) ? 0 : mode,
    mtime: raw.mtime === undefined ? null : raw.mtime, raw,
  };
  if (raw.target !== undefined) info.target = raw.target;
  return info;
}

const OUTPUT_EVENTS = new Set(['start', 'stdout', 'stderr', 'lost', 'exit', 'end']);
const WATCH_EVENTS = new Set(['create', 'modify', 'delete', 'move_from', 'move_to']);

/* One output event: data decoded from base64 to a Buffer, fields in camelCase; null (skipped) for a type not known here. */
function toOutputEvent(obj) {
  if (!OUTPUT_EVENTS.has(obj.type)) return null;
  const ev = { type: obj.type };
  if (obj.offset !== undefined) ev.offset = obj.offset;
  if (obj.type === 'stdout' || obj.type === 'stderr') ev.data = Buffer.from(obj.data || '', 'base64');
  else if (obj.type === 'start') ev.process = toProcess(obj.process);
  else if (obj.type === 'lost') ev.bytes = obj.bytes;
  else if (obj.type === 'exit') {
    ev.exitCode = obj.exit_code === undefined ? null : obj.exit_code;
    ev.signal = obj.signal === undefined ? null : obj.signal;
    ev.timedOut = obj.timed_out === true;
    ev.status = obj.status;
    ev.error = obj.error === undefined ? null : obj.error;
  }
  ev.raw = obj;
  return ev;
}

function toWatchEvent(obj) {
  if (!WATCH_EVENTS.has(obj.type)) return null; /* ready, and types not known here */
  return { type: obj.type, path: obj.path, dir: obj.dir === true, raw: obj };
}

function asBuffer(what, data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  throw new TypeError(`${what} must be a Buffer, a Uint8Array or a string`);
}

function shellQuote(word) {
  return /^[A-Za-z0-9_\/.,:=+@%-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

/* The POST /exec body; types are checked before anything is sent. */
function execBody(what, command, o, extra) {
  let cmd = command;
  if (Array.isArray(cmd)) {
    if (!cmd.length || !cmd.every((w) => typeof w === 'string')) throw new TypeError(`${what}: command must be a string or a non-empty array of strings`);
    cmd = cmd.map(shellQuote).join(' ');
  }
  if (typeof cmd !== 'string' || !cmd) throw new TypeError(`${what}: command must be a non-empty string`);
  checkType(what, 'cwd', o.cwd, 'string');
  checkType(what, 'timeout', o.timeout, 'number');
  if (isSet(o.timeout) && o.timeout < 0) throw new TypeError(`${what}: timeout must be seconds >= 0`);
  if (isSet(o.env)) {
    if (typeof o.env !== 'object' || Array.isArray(o.env) || !Object.values(o.env).every((v) => typeof v === 'string')) {
      throw new TypeError(`${what}: env must be an object of strings`);
    }
  }
  const body = { command: cmd };
  for (const [k, t] of [['tty', 'boolean'], ['stdin', 'boolean'], ['cols', 'integer'], ['rows', 'integer']]) {
    if (!extra || !(k in extra)) continue;
    checkType(what, k, extra[k], t);
    if (isSet(extra[k]) && extra[k] !== false) body[k] = extra[k];
  }
  if (isSet(o.cwd)) body.cwd = o.cwd;
  if (isSet(o.env)) body.env = { ...o.env };
  if (isSet(o.timeout)) body.timeout = Math.ceil(o.timeout);
  return body;
}

function checkPath(what, p) {
  if (typeof p !== 'string' || !p) throw new TypeError(`${what}: path must be a non-empty string`);
  return p;
}

/*
 * An async iterator over the objects of an NDJSON stream, closable: close()
 * ends the HTTP response (a pending next() then finishes). `last(ev)` marks
 * the event that ends the stream; one that breaks off before it rejects
 * with a MagsConnectionError.
 */
function eventStream(res, what, convert, last) {
  let closed = false;
  let complete = false;
  const lines = ndjsonLines(res);
  const gen = (async function* events() {
    try {
      for (;;) {
        let r;
        try {
          r = await lines.next();
        } catch (e) {
          if (closed) return;
          throw new MagsConnectionError(`${what} broke: ${e.message}`, { cause: e });
        }
        if (r.done) {
          if (!closed && last) throw new MagsConnectionError(`${what} ended early`);
          return;
        }
        if (!r.value.trim()) continue; /* keep-alive */
        let obj;
        try {
          obj = JSON.parse(r.value);
        } catch (e) {
          throw new ServerError(`bad line in ${what}: ${e.message}`);
        }
        const ev = convert(obj);
        if (ev === null) continue;
        if (last && last(ev)) {
          complete = true;
          yield ev;
          return;
        }
        yield ev;
      }
    } finally {
      closed = true;
      res.destroy();
    }
  })();
  const it = {
    next: () => gen.next(),
    return: (v) => { closed = true; res.destroy(); return gen.return(v); },
    throw: (e) => gen.throw(e),
    [Symbol.asyncIterator]() { return this; },
    /** Ends the stream and its HTTP response. */
    close() { closed = true; res.destroy(); return gen.return(undefined).then(() => undefined, () => undefined); },
    get closed() { return closed; },
    get complete() { return complete; },
    /** The next raw object (used to read a watch's ready line). */
    _lines: lines,
  };
  return it;
}

/* --------------------------------------------------------------------- Job */

class Job {
  constructor(client, raw, logs) {
    Object.defineProperty(this, '_client', { value: client, enumerable: false, writable: false });
    /** stdout and stderr, as filled by run, runAndWait, wait or refresh({ logs: true }). */
    this.logs = typeof logs === 'string' ? logs : '';
    this._set(raw);
  }

  _set(raw) {
    this.id = raw.id;
    this.status = raw.status;
    this.exitCode = raw.exit_code === undefined ? null : raw.exit_code;
    this.error = raw.error === undefined ? null : raw.error;
    this.url = raw.url === undefined ? null : raw.url;
    this.workspace = raw.workspace === undefined ? null : raw.workspace;
    /** The guest image it runs on: the one asked for, or magsd's default. */
    this.image = raw.image === undefined ? null : raw.image;
    this.script = raw.script === undefined ? null : raw.script;
    this.alwaysOn = raw.always_on === true;
    this.ssh = raw.ssh === undefined ? null : raw.ssh;
    this.createdAt = raw.created_at === undefined ? null : raw.created_at;
    this.startedAt = raw.started_at === undefined ? null : raw.started_at;
    this.finishedAt = raw.finished_at === undefined ? null : raw.finished_at;
    /** The job as the API returned it (snake_case). */
    this.raw = raw;
    return this;
  }

  /** True once the job completed or failed. */
  get done() {
    return ENDED.has(this.status);
  }

  /** Reloads the job (and, with { logs: true }, its output). */
  async refresh(options) {
    const o = checkKeys('refresh', options, ['logs']);
    const raw = await this._client._request('GET', `/mags-jobs/${seg(this.id, 'job id')}`);
    this._set(raw);
    if (o.logs) this.logs = await this._client.logs(this.id);
    return this;
  }

  /** Waits until the job has ended, fills logs; { timeout } in seconds. */
  async wait(options) {
    const o = checkKeys('wait', options, ['timeout', 'pollInterval']);
    const raw = await this._client._waitFor(this.id, 'end', o);
    this._set(raw);
    this.logs = await this._client.logs(this.id);
    return this;
  }

  /** Stops the job (409 ConflictError when it has already ended). */
  async stop() {
    const raw = await this._client._request('POST', `/mags-jobs/${seg(this.id, 'job id')}/stop`);
    return this._set(raw);
  }

  toJSON() {
    const { raw, ...rest } = this; // eslint-disable-line no-unused-vars
    return rest;
  }
}

/* ------------------------------------------------------------------ client */

class Mags {
  /**
   * @param {{token?: string, apiUrl?: string}} [options]
   */
  constructor(options) {
    const o = checkKeys('new Mags()', options, ['token', 'apiUrl']);
    checkType('new Mags()', 'token', o.token, 'string');
    checkType('new Mags()', 'apiUrl', o.apiUrl, 'string');
    let cfg;
    const config = () => (cfg === undefined ? (cfg = readConfig()) : cfg);
    let token = o.token || envValue('MAGS_TOKEN') || envValue('MAGS_API_TOKEN');
    if (!token) {
      const t = config().token;
      if (typeof t === 'string' && t) token = t;
    }
    if (!token) {
      throw new AuthenticationError(
        'no Mags API token: pass new Mags({ token }), set MAGS_TOKEN (or MAGS_API_TOKEN), ' +
        `or log in with \`mags login\` (${configPath()})`);
    }
    let apiUrl = o.apiUrl || envValue('MAGS_API_URL');
    if (!apiUrl) {
      const u = config().api_url;
      apiUrl = typeof u === 'string' && u ? u : DEFAULT_API_URL;
    }
    /** magsd's base URL, without /api/v1. */
    this.apiUrl = normalizeApiUrl(apiUrl);
    Object.defineProperty(this, 'token', { value: token, enumerable: false, writable: false });

    const c = this;
    /** Named workspaces. */
    this.workspace = {
      list: async () => (await c._request('GET', '/workspaces')).workspaces,
      get: (name) => c._request('GET', `/workspaces/${seg(name, 'workspace name')}`),
      delete: (name) => c._request('DELETE', `/workspaces/${seg(name, 'workspace name')}`),
      sync: (name) => c._request('POST', `/workspaces/${seg(name, 'workspace name')}/sync`),
    };
    /** Extra names (ALIAS.DOMAIN) for a workspace's or a job's URL. */
    this.urlAliases = {
      create: (alias, target) => {
        if (typeof alias !== 'string' || !alias) throw new TypeError('urlAliases.create: alias must be a non-empty string');
        const t = typeof target === 'string' ? { workspace: target } : checkKeys('urlAliases.create', target, ['workspace', 'jobId']);
        const body = { alias };
        if (isSet(t.workspace)) body.workspace = t.workspace;
        if (isSet(t.jobId)) body.job_id = t.jobId;
        return c._request('POST', '/url-aliases', { body });
      },
      list: async () => (await c._request('GET', '/url-aliases')).aliases,
      get: (alias) => c._request('GET', `/url-aliases/${seg(alias, 'alias')}`),
      delete: (alias) => c._request('DELETE', `/url-aliases/${seg(alias, 'alias')}`),
    };
    /** Cron schedules. */
    this.cron = {
      create: async (options) => {
        const o2 = checkKeys('cron.create', options, CRON_KEYS);
        if (typeof o2.expression !== 'string' || !o2.expression) throw new TypeError('cron.create: expression is required');
        if (typeof o2.script !== 'string' || !o2.script) throw new TypeError('cron.create: script is required');
        return c._request('POST', '/cron-jobs', { body: await cronBody('cron.create', o2, false) });
      },
      list: async () => (await c._request('GET', '/cron-jobs')).cron_jobs,
      get: (id) => c._request('GET', `/cron-jobs/${seg(id, 'schedule id')}`),
      update: async (id, fields) => {
        const p = `/cron-jobs/${seg(id, 'schedule id')}`;
        const o2 = checkKeys('cron.update', fields, CRON_KEYS);
        return c._request('PATCH', p, { body: await cronBody('cron.update', o2, true) });
      },
      delete: (id) => c._request('DELETE', `/cron-jobs/${seg(id, 'schedule id')}`),
    };
    /** The files of a running sandbox. */
    this.files = new Files(this);
  }

  /* One API call: parsed JSON, or the Response itself with { stream: true }. */
  async _request(method, pathname, opts = {}) {
    let url = `${this.apiUrl}/api/v1${pathname}`;
    if (opts.query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(opts.query)) if (isSet(v)) q.set(k, String(v));
      const qs = q.toString();
      if (qs) url += `?${qs}`;
    }
    const headers = {
      authorization: `Bearer ${this.token}`,
      accept: opts.accept || (opts.stream ? 'application/x-ndjson, application/json' : 'application/json'),
      'user-agent': `mags-node/${VERSION}`,
    };
    const init = { method, headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    } else if (opts.raw !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      if (isSet(opts.rawLength)) headers['content-length'] = String(opts.rawLength);
      init.body = opts.raw;
      if (typeof opts.raw.pipe === 'function' || typeof opts.raw.getReader === 'function') init.duplex = 'half';
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      const why = e && e.cause && e.cause.message ? e.cause.message : (e && e.message) || String(e);
      throw new MagsConnectionError(`cannot reach magsd at ${this.apiUrl}: ${why}`, { cause: e });
    }
    if (!res.ok) {
      let text = '';
      try {
        text = await res.text();
      } catch (_) { /* the status says enough */ }
      let body = null;
      try {
        body = JSON.parse(text);
      } catch (_) { /* not JSON */ }
      const msg = body && typeof body.error === 'string' ? body.error : (text.trim() || `HTTP ${res.status} ${res.statusText}`);
      throw errorForStatus(res.status, msg, body);
    }
    if (opts.stream) return res;
    let text;
    try {
      text = await res.text();
    } catch (e) {
      throw new MagsConnectionError(`reading the reply from ${this.apiUrl} failed: ${e.message}`, { cause: e });
    }
    try {
      return text ? JSON.parse(text) : null;
    } catch (e) {
      throw new ServerError(`magsd sent a reply that is not JSON (${method} ${pathname}): ${text.slice(0, 200)}`, { status: res.status });
    }
  }

  /*
   * A request whose reply is read as a stream, with node:http(s) (no body
   * timeout, unlike fetch): resolves to the IncomingMessage of a 2xx reply,
   * rejects with the mapped MagsError otherwise.
   */
  _stream(method, pathname, opts = {}) {
    const u = new URL(`${this.apiUrl}/api/v1${pathname}`);
    if (opts.query) for (const [k, v] of Object.entries(opts.query)) if (isSet(v)) u.searchParams.set(k, String(v));
    const headers = {
      authorization: `Bearer ${this.token}`,
      accept: opts.accept || 'application/x-ndjson',
      'user-agent': `mags-node/${VERSION}`,
    };
    let payload;
    if (opts.body !== undefined) {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(u, { method, headers }, (res) => {
        if (res.statusCode >= 200 && res.statusCode < 300) {
          /* heartbeats (an empty line after 15 s without events): a longer silence means magsd is gone */
          if (opts.idleTimeout) req.setTimeout(opts.idleTimeout, () => req.destroy(new Error(`no data from magsd for ${opts.idleTimeout / 1000} s`)));
          resolve(res);
          return;
        }
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('error', () => {});
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body = null;
          try {
            body = JSON.parse(text);
          } catch (_) { /* not JSON */ }
          const msg = body && typeof body.error === 'string' ? body.error : (text.trim() || `HTTP ${res.statusCode} ${res.statusMessage}`);
          reject(errorForStatus(res.statusCode, msg, body));
        });
      });
      req.on('error', (e) => reject(new MagsConnectionError(`cannot reach magsd at ${this.apiUrl}: ${e.message}`, { cause: e })));
      /* a stream may stay quiet for hours (a watch): keep-alive probes notice a magsd that vanished */
      req.on('socket', (sock) => sock.setKeepAlive(true, 60000));
      req.end(payload);
    });
  }

  /*
   * A request with a raw body (a Buffer, or a Readable piped as it is read),
   * with node:http(s): an error reply magsd sends before it has read the
   * whole body (a bad path, say) still rejects with its MagsError rather than
   * a broken pipe. Content-Length when rawLength is given, else chunked.
   * Resolves to the parsed JSON reply.
   */
  _send(method, pathname, opts) {
    const u = new URL(`${this.apiUrl}/api/v1${pathname}`);
    if (opts.query) for (const [k, v] of Object.entries(opts.query)) if (isSet(v)) u.searchParams.set(k, String(v));
    const headers = {
      authorization: `Bearer ${this.token}`,
      accept: 'application/json',
      'content-type': 'application/octet-stream',
      'user-agent': `mags-node/${VERSION}`,
    };
    if (isSet(opts.rawLength)) headers['content-length'] = String(opts.rawLength);
    const mod = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = mod.request(u, { method, headers }, (res) => {
        answered = true;
        const parts = [];
        res.on('data', (c) => parts.push(c));
        res.on('error', (e) => reject(new MagsConnectionError(`reading the reply from ${this.apiUrl} failed: ${e.message}`, { cause: e })));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          let body = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch (_) { /* not JSON */ }
          if (res.statusCode >= 200 && res.statusCode < 300) {
            if (text && body === null) reject(new ServerError(`magsd sent a reply that is not JSON (${method} ${pathname}): ${text.slice(0, 200)}`, { status: res.statusCode }));
            else resolve(body);
            return;
          }
          const msg = body && typeof body.error === 'string' ? body.error : (text.trim() || `HTTP ${res.statusCode} ${res.statusMessage}`);
          reject(errorForStatus(res.statusCode, msg, body));
        });
        if (typeof opts.raw.unpipe === 'function') {
          opts.raw.unpipe(req);
          /* magsd answered before it had it all (an error): the rest is not needed */
          if (!opts.raw.readableEnded && typeof opts.raw.destroy === 'function') opts.raw.destroy();
        }
      });
      req.on('error', (e) => {
        if (!answered) reject(new MagsConnectionError(`sending to magsd at ${this.apiUrl} failed: ${e.message}`, { cause: e }));
      });
      if (Buffer.isBuffer(opts.raw)) {
        req.end(opts.raw);
      } else {
        opts.raw.on('error', (e) => {
          req.destroy();
          reject(e instanceof MagsError ? e : new MagsError(`reading the data to send failed: ${e.message}`, { cause: e }));
        });
        opts.raw.pipe(req);
      }
    });
  }

  /* Polls a job until it has ended ('end') or left queued ('running'). */
  async _waitFor(jobId, until, o = {}) {
    checkType('wait', 'timeout', o.timeout, 'number');
    checkType('wait', 'pollInterval', o.pollInterval, 'number');
    const deadline = isSet(o.timeout) ? Date.now() + o.timeout * 1000 : Infinity;
    const maxInterval = isSet(o.pollInterval) ? o.pollInterval * 1000 : 500;
    let interval = Math.min(100, maxInterval);
    for (;;) {
      const raw = await this._request('GET', `/mags-jobs/${seg(jobId, 'job id')}`);
      if (ENDED.has(raw.status) || (until === 'running' && raw.status !== 'queued')) return raw;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new MagsTimeoutError(`job ${jobId} is still ${raw.status} after ${o.timeout} s`, {
          jobId, job: new Job(this, raw),
        });
      }
      await sleep(Math.min(interval, left));
      interval = Math.min(interval * 1.5, maxInterval);
    }
  }

  /* Validates run options and stats files; no request yet. */
  async _prepare(scriptOrOptions) {
    let opts;
    if (typeof scriptOrOptions === 'string') opts = { script: scriptOrOptions };
    else opts = checkKeys('run', scriptOrOptions, RUN_KEYS);
    if (typeof opts.script !== 'string' || !opts.script) throw new TypeError('run: script is required (a non-empty string)');
    checkType('run', 'wait', opts.wait, 'boolean');
    const body = mapRunOptions('run', opts, false);
    const files = await describeFiles('run', opts.files);
    if (files.length) body.files = files.map((f) => ({ name: f.name, size: f.size, mode: f.mode }));
    return { body, files, opts };
  }

  async _submit(prepared) {
    const raw = await this._request('POST', '/mags-jobs', { body: prepared.body });
    const job = new Job(this, raw);
    if (prepared.files.length) {
      try {
        for (const f of prepared.files) await this._upload(job.id, f);
      } catch (e) {
        try {
          await this._request('POST', `/mags-jobs/${seg(job.id, 'job id')}/stop`);
        } catch (_) { /* it may have ended already */ }
        e.message = `upload of ${e.file || 'a file'} failed: ${e.message}; stopped job ${job.id}`;
        e.jobId = job.id;
        throw e;
      }
    }
    return job;
  }

  async _upload(jobId, f) {
    const q = { name: f.name, mode: `0${f.mode.toString(8)}` };
    let body;
    try {
      body = f.size <= BUFFERED_UPLOAD_MAX ? await fsp.readFile(f.path) : fs.createReadStream(f.path);
      if (Buffer.isBuffer(body) && body.length !== f.size) throw new MagsError(`${f.path} changed size since the submit`);
      const r = await this._request('POST', `/mags-jobs/${seg(jobId, 'job id')}/upload`, { query: q, raw: body, rawLength: f.size });
      if (!r || r.size !== f.size) throw new MagsError(`magsd stored ${r && r.size} bytes of ${f.size}`);
      return r;
    } catch (e) {
      if (e && typeof e === 'object') e.file = f.path;
      throw e;
    }
  }

  /**
   * Runs a script in a new sandbox. Resolves when the job has ended, with its
   * output in job.logs; an alwaysOn, url or ssh job resolves once it runs
   * (its server is up); { wait: false } resolves right after the submit.
   */
  async run(scriptOrOptions, ...rest) {
    if (rest.length) throw new TypeError('run takes one argument: a script string or an options object');
    const prepared = await this._prepare(scriptOrOptions);
    const job = await this._submit(prepared);
    const o = prepared.opts;
    if (o.wait === false) {
      if (prepared.files.length) await job.refresh();
      return job;
    }
    if (o.alwaysOn || o.url || o.ssh) {
      job._set(await this._waitFor(job.id, 'running'));
      job.logs = await this.logs(job.id);
      return job;
    }
    return job.wait();
  }

  /**
   * Runs a script and waits until the job has ended (also an alwaysOn one);
   * { timeout } bounds the wait in seconds (MagsTimeoutError; the job goes on).
   */
  async runAndWait(scriptOrOptions, waitOptions) {
    const w = checkKeys('runAndWait', waitOptions, ['timeout', 'pollInterval']);
    const prepared = await this._prepare(scriptOrOptions);
    const job = await this._submit(prepared);
    return job.wait(w);
  }

  /** The job's status: queued, running, completed or failed. */
  async status(jobId) {
    return (await this._request('GET', `/mags-jobs/${seg(jobId, 'job id')}`)).status;
  }

  /** The job (without logs). */
  async get(jobId) {
    return new Job(this, await this._request('GET', `/mags-jobs/${seg(jobId, 'job id')}`));
  }

  /** The job's stdout and stderr so far, as one string. */
  async logs(jobId) {
    return joinOutput(await this.logEntries(jobId));
  }

  /** The job's log entries ({ seq, stream, data, time }), after seq `since`. */
  async logEntries(jobId, options) {
    const o = checkKeys('logEntries', options, ['since']);
    checkType('logEntries', 'since', o.since, 'integer');
    const r = await this._request('GET', `/mags-jobs/${seg(jobId, 'job id')}/logs`, { query: { since: o.since } });
    return r.logs;
  }

  /**
   * Follows the job's output: an async iterator of { seq, stream, data }
   * entries (stream stdout, stderr or system) that ends when the job ends.
   */
  streamLogs(jobId, options) {
    const o = checkKeys('streamLogs', options, ['since']);
    checkType('streamLogs', 'since', o.since, 'integer');
    const idSeg = seg(jobId, 'job id');
    const client = this;
    return (async function* follow() {
      let since = o.since || 0;
      let drops = 0;
      for (;;) {
        const res = await client._request('GET', `/mags-jobs/${idSeg}/logs`, {
          query: { follow: 'true', since: since || undefined }, stream: true,
        });
        let final = null;
        let progressed = false;
        try {
          for await (const line of ndjsonLines(res.body)) {
            if (!line.trim()) continue; /* keep-alive */
            const obj = JSON.parse(line);
            if (typeof obj.seq === 'number') {
              if (obj.seq <= since) continue;
              since = obj.seq;
              progressed = true;
              yield obj;
            } else if (typeof obj.status === 'string') {
              final = obj;
            }
          }
        } catch (e) {
          if (e instanceof SyntaxError) throw new ServerError(`bad line in the log stream of job ${jobId}: ${e.message}`);
          /* the connection broke: follow again from the last entry */
        }
        if (final) return final;
        drops = progressed ? 1 : drops + 1;
        if (drops > 10) throw new MagsConnectionError(`the log stream of job ${jobId} keeps breaking off`);
        await sleep(Math.min(200 * drops, 2000));
      }
    })();
  }

  /** Stops a queued or running job; resolves to the stopped job. */
  async stop(jobId) {
    return new Job(this, await this._request('POST', `/mags-jobs/${seg(jobId, 'job id')}/stop`));
  }

  /** The caller's jobs, newest first; filters: status, workspace, limit. */
  async list(options) {
    const o = checkKeys('list', options, ['status', 'workspace', 'limit']);
    const r = await this._request('GET', '/mags-jobs', { query: { status: o.status, workspace: o.workspace, limit: o.limit } });
    return r.jobs.map((j) => new Job(this, j));
  }

  /** Pushes a workspace to the object store now: a job id (its workspace) or a workspace name. */
  async sync(target) {
    if (typeof target !== 'string' || !target) throw new TypeError('sync: target must be a job id or a workspace name');
    if (JOB_ID_RE.test(target)) return this._request('POST', `/mags-jobs/${encodeURIComponent(target)}/sync`);
    return this._request('POST', `/workspaces/${encodeURIComponent(target)}/sync`);
  }

  /** Turns on a public URL and/or SSH for a running job; resolves to the job. */
  async enableAccess(jobId, options) {
    const o = checkKeys('enableAccess', options, ['url', 'port', 'ssh', 'sshPublicKey']);
    checkType('enableAccess', 'url', o.url, 'boolean');
    checkType('enableAccess', 'port', o.port, 'integer');
    checkType('enableAccess', 'ssh', o.ssh, 'boolean');
    checkType('enableAccess', 'sshPublicKey', o.sshPublicKey, 'string');
    const body = {};
    if (isSet(o.url)) body.url = o.url;
    if (isSet(o.port)) body.port = o.port;
    if (isSet(o.ssh)) body.ssh = o.ssh;
    if (isSet(o.sshPublicKey)) body.ssh_public_key = o.sshPublicKey;
    return new Job(this, await this._request('POST', `/mags-jobs/${seg(jobId, 'job id')}/access`, { body }));
  }

  /** Changes a job's settings (PATCH): alwaysOn, idleTimeout take effect at once; timeout of a running job is a new limit from now. */
  async update(jobId, options) {
    const o = checkKeys('update', options, ['alwaysOn', 'idleTimeout', 'timeout']);
    checkType('update', 'alwaysOn', o.alwaysOn, 'boolean');
    checkType('update', 'idleTimeout', o.idleTimeout, 'integer');
    checkType('update', 'timeout', o.timeout, 'integer');
    const body = {};
    if (o.alwaysOn !== undefined) body.always_on = o.alwaysOn;
    if (o.idleTimeout !== undefined) body.idle_timeout = o.idleTimeout;
    if (o.timeout !== undefined) body.timeout = o.timeout;
    return new Job(this, await this._request('PATCH', `/mags-jobs/${seg(jobId, 'job id')}`, { body }));
  }
  /* ------------------------------------------------ long-lived sandboxes */

  /**
   * A long-lived sandbox on workspace `name`, as `mags new NAME`: a job that
   * runs until stopped. When the workspace already has a running job, that is
   * the sandbox. Resolves to the Job once it runs.
   */
  async newSandbox(name, options) {
    if (typeof name !== 'string' || !name) throw new TypeError('newSandbox: name must be a non-empty string (a workspace name)');
    const o = checkKeys('newSandbox', options, ['persist', 'image', 'timeout']);
    checkType('newSandbox', 'persist', o.persist, 'boolean');
    checkType('newSandbox', 'image', o.image, 'string');
    checkType('newSandbox', 'timeout', o.timeout, 'number');
    const waitOpts = { timeout: isSet(o.timeout) ? o.timeout : 600, pollInterval: 0.5 };
    for (const status of ['running', 'queued']) {
      const r = await this._request('GET', '/mags-jobs', { query: { workspace: name, status, limit: 1 } });
      const found = (r.jobs || []).find((j) => j.workspace === name && j.status === status);
      if (found) {
        const raw = found.status === 'running' ? found : await this._waitFor(found.id, 'running', waitOpts);
        if (raw.status === 'running') return new Job(this, raw);
      }
    }
    const body = { script: NEW_SCRIPT, workspace: name, persist: o.persist === true };
    if (isSet(o.image)) body.image = o.image;
    const sub = await this._request('POST', '/mags-jobs', { body });
    const raw = sub.status === 'running' ? sub : await this._waitFor(sub.id, 'running', waitOpts);
    if (raw.status !== 'running') {
      throw new MagsError(`sandbox ${name} did not start: job ${raw.id} ${raw.status}${raw.error ? `: ${raw.error}` : ''}`);
    }
    return new Job(this, raw);
  }

  /**
   * Runs a command in a running sandbox and resolves when it has ended, to
   * { exitCode, stdout, stderr, process } (Buffers; a non-zero exit code does
   * not reject). Options: cwd, env, timeout (seconds; then exit code 124),
   * stdin (a Buffer or string, then closed), onOutput (called with each
   * stdout/stderr event as it arrives).
   */
  async exec(sandbox, command, options) {
    const o = checkKeys('exec', options, ['cwd', 'env', 'timeout', 'stdin', 'onOutput']);
    const stdin = isSet(o.stdin) ? asBuffer('exec: stdin', o.stdin) : null;
    if (isSet(o.onOutput) && typeof o.onOutput !== 'function') throw new TypeError('exec: onOutput must be a function');
    const body = execBody('exec', command, o, { stdin: stdin !== null });
    const sbox = sandboxSeg(sandbox);
    const res = await this._stream('POST', `/mags-jobs/${sbox}/exec`, { body, idleTimeout: HEARTBEAT_SILENCE_MS });
    const events = eventStream(res, 'the exec stream', toOutputEvent, (e) => e.type === 'exit');
    const out = [];
    const err = [];
    let proc = null;
    let end = null;
    let feeding = null;
    try {
      for await (const ev of events) {
        if (ev.type === 'start') {
          proc = ev.process;
          if (stdin !== null && !feeding) {
            feeding = this.sendStdin(sandbox, proc.id, stdin, { eof: true }).then(() => null, (e) => (e instanceof ConflictError ? null : e));
          }
        } else if (ev.type === 'stdout' || ev.type === 'stderr') {
          (ev.type === 'stdout' ? out : err).push(ev.data);
          if (o.onOutput) o.onOutput(ev);
        } else if (ev.type === 'exit') {
          end = ev;
        }
      }
    } finally {
      await events.close();
    }
    const feedErr = feeding ? await feeding : null;
    if (feedErr && (!end || end.exitCode === null)) throw feedErr;
    if (!end) throw new MagsConnectionError('the exec stream ended before the process did');
    const process = proc ? {
      ...proc, status: end.status || 'exited', exitCode: end.exitCode, signal: end.signal, timedOut: end.timedOut, error: end.error,
      outputBytes: end.offset === undefined ? proc.outputBytes : end.offset, done: true,
    } : null;
    return {
      exitCode: end.exitCode === null ? -1 : end.exitCode,
      stdout: Buffer.concat(out),
      stderr: Buffer.concat(err),
      process,
    };
  }

  /**
   * Starts a command in the background; resolves to its Process at once.
   * Options: tty, cols, rows, stdin (keep it open for sendStdin), cwd, env, timeout.
   */
  async spawn(sandbox, command, options) {
    const o = checkKeys('spawn', options, ['tty', 'stdin', 'cols', 'rows', 'cwd', 'env', 'timeout']);
    const body = execBody('spawn', command, o, { tty: o.tty, stdin: o.stdin, cols: o.cols, rows: o.rows });
    body.detach = true;
    return toProcess(await this._request('POST', `/mags-jobs/${sandboxSeg(sandbox)}/exec`, { body }));
  }

  /** The sandbox's processes, running and recently ended, by id. */
  async processes(sandbox) {
    const r = await this._request('GET', `/mags-jobs/${sandboxSeg(sandbox)}/processes`);
    return (r.processes || []).map(toProcess);
  }

  /** One process as it is now. */
  async process(sandbox, pid) {
    return toProcess(await this._request('GET', `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}`));
  }

  /**
   * A process's output: an async iterator of events (stdout/stderr with a
   * Buffer `data`, lost, then exit, or end without follow). { offset: N |
   * 'end', follow: true } as in the API. Leaving a for-await loop (or close())
   * ends the request.
   */
  processOutput(sandbox, pid, options) {
    const o = checkKeys('processOutput', options, ['offset', 'follow']);
    if (isSet(o.offset) && o.offset !== 'end' && !(Number.isInteger(o.offset) && o.offset >= 0)) {
      throw new TypeError('processOutput: offset must be a byte offset (an integer >= 0) or "end"');
    }
    checkType('processOutput', 'follow', o.follow, 'boolean');
    const p = `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}/output`;
    const query = { offset: isSet(o.offset) ? o.offset : undefined, follow: o.follow ? '1' : undefined };
    let inner = null;
    let closed = false;
    const open = async () => {
      if (!inner) {
        const res = await this._stream('GET', p, { query, idleTimeout: HEARTBEAT_SILENCE_MS });
        inner = eventStream(res, `the output of process ${pidSeg(pid)}`, toOutputEvent, (e) => e.type === 'exit' || e.type === 'end');
        if (closed) await inner.close();
      }
      return inner;
    };
    return {
      async next() {
        if (closed) return { done: true, value: undefined };
        return (await open()).next();
      },
      async return(v) {
        closed = true;
        if (inner) await inner.close();
        return { done: true, value: v };
      },
      [Symbol.asyncIterator]() { return this; },
      close() { return this.return(undefined).then(() => undefined); },
    };
  }

  /** Writes data (Buffer or string) to a process's stdin; { eof: true } closes it after. Resolves to the bytes written. */
  async sendStdin(sandbox, pid, data, options) {
    const o = checkKeys('sendStdin', options, ['eof']);
    checkType('sendStdin', 'eof', o.eof, 'boolean');
    const buf = asBuffer('sendStdin: data', data);
    const p = `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}/stdin`;
    let sent = 0;
    let off = 0;
    do {
      const piece = buf.subarray(off, off + STDIN_CHUNK);
      off += piece.length;
      const last = off >= buf.length;
      const r = await this._request('POST', p, { raw: piece, rawLength: piece.length, query: { eof: o.eof && last ? '1' : undefined } });
      sent += r && typeof r.bytes === 'number' ? r.bytes : piece.length;
    } while (off < buf.length);
    return sent;
  }

  /** Sends a signal (a number or a name: 'INT', 'SIGINT'; default 'TERM'); resolves to the Process. */
  async kill(sandbox, pid, signal = 'TERM') {
    if (!(typeof signal === 'string' && signal) && !Number.isInteger(signal)) throw new TypeError('kill: signal must be a number or a name such as "TERM"');
    return toProcess(await this._request('POST', `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}/signal`, { body: { signal } }));
  }

  /**
   * Waits for a process to end; resolves to it. With { timeout } (seconds) it
   * resolves after that even when it still runs (look at process.done).
   */
  async waitProcess(sandbox, pid, options) {
    const o = checkKeys('waitProcess', options, ['timeout']);
    checkType('waitProcess', 'timeout', o.timeout, 'number');
    const deadline = isSet(o.timeout) ? Date.now() + o.timeout * 1000 : null;
    const p = `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}/wait`;
    for (;;) {
      const left = deadline === null ? WAIT_STEP : Math.min(WAIT_STEP, Math.max(0, Math.ceil((deadline - Date.now()) / 1000)));
      const res = await this._stream('GET', p, { query: { timeout: left }, accept: 'application/json' });
      const parts = [];
      for await (const c of res) parts.push(c);
      let raw;
      try {
        raw = JSON.parse(Buffer.concat(parts).toString('utf8'));
      } catch (e) {
        throw new ServerError(`magsd sent a reply that is not JSON (GET ${p})`);
      }
      const proc = toProcess(raw);
      if (proc.done || (deadline !== null && Date.now() >= deadline)) return proc;
    }
  }

  /** Changes a tty process's terminal size; resolves to the Process. */
  async resize(sandbox, pid, cols, rows) {
    checkType('resize', 'cols', cols, 'integer');
    checkType('resize', 'rows', rows, 'integer');
    if (!isSet(cols) || !isSet(rows)) throw new TypeError('resize: cols and rows are required');
    return toProcess(await this._request('POST', `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}/resize`, { body: { cols, rows } }));
  }

  /** Forgets a process, killing it (SIGKILL) if it still runs. */
  async deleteProcess(sandbox, pid) {
    await this._request('DELETE', `/mags-jobs/${sandboxSeg(sandbox)}/processes/${pidSeg(pid)}`);
  }
}

/* ------------------------------------------------------------------- files */

/** mags.files: the files of a running sandbox (paths absolute, or relative to /root). */
class Files {
  constructor(client) {
    Object.defineProperty(this, '_client', { value: client, enumerable: false, writable: false });
  }

  _path(sandbox, action) {
    return `/mags-jobs/${sandboxSeg(sandbox)}/${action}`;
  }

  /** The whole file, as a Buffer. */
  async read(sandbox, p) {
    const stream = await this.readStream(sandbox, p);
    const parts = [];
    for await (const c of stream) parts.push(c);
    return Buffer.concat(parts);
  }

  /** The file as a Readable stream of Buffers (any size); rejects (404, 400) before any data. */
  async readStream(sandbox, p) {
    const res = await this._client._stream('GET', this._path(sandbox, 'files'), {
      query: { path: checkPath('files.readStream', p) }, accept: 'application/octet-stream',
    });
    return res;
  }

  /**
   * Writes a file (parents are created): data is a Buffer, Uint8Array, string
   * (UTF-8), or a Readable / async iterable of chunks, streamed (with
   * Content-Length when { size } is given or it is an fs.ReadStream, else
   * chunked). { mode } is the permission bits (default 0o644). Resolves to its FileInfo.
   */
  async write(sandbox, p, data, options) {
    const o = checkKeys('files.write', options, ['mode', 'size']);
    checkPath('files.write', p);
    checkType('files.write', 'mode', o.mode, 'integer');
    checkType('files.write', 'size', o.size, 'integer');
    const mode = isSet(o.mode) ? o.mode : 0o644;
    if (mode < 0 || mode > 0o7777) throw new TypeError('files.write: mode must be permission bits (e.g. 0o644)');
    const query = { path: p, mode: mode.toString(8).padStart(4, '0') };
    let raw;
    let rawLength;
    if (typeof data === 'string' || data instanceof Uint8Array || data instanceof ArrayBuffer) {
      raw = asBuffer('files.write: data', data);
      rawLength = raw.length;
    } else if (data && (typeof data[Symbol.asyncIterator] === 'function' || typeof data.pipe === 'function')) {
      raw = typeof data.pipe === 'function' ? data : Readable.from(data, { objectMode: false });
      if (raw.readableObjectMode) raw = Readable.from(raw, { objectMode: false });
      rawLength = o.size;
      if (!isSet(rawLength) && data instanceof fs.ReadStream && typeof data.path === 'string' && data.start === undefined && data.end === Infinity) {
        rawLength = (await fsp.stat(data.path)).size;
      }
    } else {
      throw new TypeError('files.write: data must be a Buffer, a string or a Readable stream');
    }
    return toFileInfo(await this._client._send('PUT', this._path(sandbox, 'files'), { query, raw, rawLength }));
  }

  /** A directory's entries (FileInfo[]), by name. */
  async list(sandbox, p = '/root') {
    const r = await this._client._request('GET', this._path(sandbox, 'files/list'), { query: { path: checkPath('files.list', p) } });
    return (r.entries || []).map(toFileInfo);
  }

  /** One file's FileInfo (of a symlink itself). */
  async stat(sandbox, p) {
    return toFileInfo(await this._client._request('GET', this._path(sandbox, 'files/stat'), { query: { path: checkPath('files.stat', p) } }));
  }

  /** Removes a file or an empty directory; { recursive: true } a directory and all in it. */
  async remove(sandbox, p, options) {
    const o = checkKeys('files.remove', options, ['recursive']);
    checkType('files.remove', 'recursive', o.recursive, 'boolean');
    await this._client._request('DELETE', this._path(sandbox, 'files'), {
      query: { path: checkPath('files.remove', p), recursive: o.recursive ? '1' : undefined },
    });
  }

  /** Creates a directory; { parents: true } (the default) makes missing parents and accepts an existing one. */
  async mkdir(sandbox, p, options) {
    const o = checkKeys('files.mkdir', options, ['parents']);
    checkType('files.mkdir', 'parents', o.parents, 'boolean');
    const body = { path: checkPath('files.mkdir', p), parents: o.parents !== false };
    return toFileInfo(await this._client._request('POST', this._path(sandbox, 'files/mkdir'), { body }));
  }

  /**
   * Watches a directory ({ recursive }). Resolves, once the watch is in
   * place, to an async iterator of { type, path, dir } events that goes on
   * until close() (or leaving a for-await loop).
   */
  async watch(sandbox, p = '/root', options) {
    const o = checkKeys('files.watch', options, ['recursive']);
    checkType('files.watch', 'recursive', o.recursive, 'boolean');
    const res = await this._client._stream('GET', this._path(sandbox, 'files/watch'), {
      query: { path: checkPath('files.watch', p), recursive: o.recursive ? '1' : undefined },
    });
    const events = eventStream(res, `the watch of ${p}`, toWatchEvent, null);
    /* the first line is {"type":"ready"}: the watch is in place */
    let first;
    try {
      for (;;) {
        const r = await events._lines.next();
        if (r.done) throw new MagsConnectionError(`the watch of ${p} ended before it was ready`);
        if (!r.value.trim()) continue;
        first = JSON.parse(r.value);
        break;
      }
    } catch (e) {
      await events.close();
      throw e instanceof SyntaxError ? new ServerError(`bad line in the watch of ${p}: ${e.message}`) : e;
    }
    if (!first || first.type !== 'ready') {
      await events.close();
      throw new ServerError(`the watch of ${p} began with ${JSON.stringify(first)}, not its ready line`);
    }
    return events;
  }
}

/* A schedule's body: run flags as for run, files inline (content_base64). */
async function cronBody(what, o, keepNull) {
  const body = mapRunOptions(what, o, keepNull);
  for (const [k, t] of [['expression', 'string'], ['name', 'string'], ['timezone', 'string'], ['enabled', 'boolean']]) {
    if (!(k in o) || o[k] === undefined || (o[k] === null && !keepNull)) continue;
    checkType(what, k, o[k], t);
    body[k] = o[k];
  }
  if (o.files === null && keepNull) {
    body.files = null;
  } else if (isSet(o.files)) {
    const files = await describeFiles(what, o.files);
    body.files = [];
    for (const f of files) {
      const data = await fsp.readFile(f.path);
      body.files.push({ name: f.name, mode: f.mode, content_base64: data.toString('base64') });
    }
  }
  return body;
}

module.exports = {
  Mags,
  Job,
  Files,
  MagsError,
  BadRequestError,
  AuthenticationError,
  NotFoundError,
  ConflictError,
  ServerError,
  MagsConnectionError,
  MagsTimeoutError,
  VERSION,
};
