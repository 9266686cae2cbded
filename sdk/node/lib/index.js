// SPDX-License-Identifier: MIT
/*
 * @magpiecloud/mags: the Node.js client of magsd's REST API (/api/v1).
 *
 * This file is the whole library, written as CommonJS so that `require` gets
 * it as it is; index.mjs re-exports the same objects for `import` (one copy of
 * every class, so `instanceof` works whichever way it was loaded). No
 * dependencies: global fetch (Node 18+), node:fs, node:os, node:path.
 */
'use strict';

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');

const VERSION = '0.1.0';
const DEFAULT_API_URL = 'http://127.0.0.1:7557';
const FILE_MAX = 1024 * 1024 * 1024; /* magsd's limit on one upload */
const BUFFERED_UPLOAD_MAX = 16 * 1024 * 1024; /* larger files are streamed from disk */
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
      accept: opts.stream ? 'application/x-ndjson, application/json' : 'application/json',
      'user-agent': `mags-node/${VERSION}`,
    };
    const init = { method, headers };
    if (opts.body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    } else if (opts.raw !== undefined) {
      headers['content-type'] = 'application/octet-stream';
      headers['content-length'] = String(opts.rawLength);
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

  /** Changes a job's settings (PATCH): alwaysOn, idleTimeout; timeout while queued. */
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
