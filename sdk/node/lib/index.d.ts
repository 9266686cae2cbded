// SPDX-License-Identifier: MIT
// Types of @magpiecloud/mags, written by hand: keep them in step with index.js.

export declare const VERSION: string;

/** A job's state. `completed`: exit 0; `failed`: non-zero exit, timeout (124), stopped, or the sandbox failed. */
export type JobStatus = 'queued' | 'running' | 'completed' | 'failed';

export interface ClientOptions {
  /** API token; default MAGS_TOKEN, then MAGS_API_TOKEN, then "token" of ~/.mags/config.json. */
  token?: string;
  /** magsd's base URL, with or without /api/v1; default MAGS_API_URL, then "api_url" of ~/.mags/config.json, then http://127.0.0.1:7557. */
  apiUrl?: string;
}

/** Options of run and runAndWait (camelCase; sent as the API's snake_case fields). */
export interface RunOptions {
  /** The command or script to run (required). */
  script: string;
  /** "inline" (default): a shell command line; "file": a script file's text (#! honoured). */
  type?: 'inline' | 'file';
  /** Named workspace: 1-48 of [A-Za-z0-9._-], starting with a letter or digit. */
  workspace?: string | null;
  /** Sync the workspace to the object store when the job ends (needs workspace). */
  persist?: boolean;
  /** A public URL leading to the guest's `port`. */
  url?: boolean;
  /** Guest port of the public URL (default 8080; needs url). */
  port?: number | null;
  /** sshd in the guest, reachable through magsd (see Job.ssh). */
  ssh?: boolean;
  /** One OpenSSH public key line for root's authorized_keys (needs ssh). */
  sshPublicKey?: string;
  /** Local file paths, uploaded into the working directory (/root) under their base names before the script runs. */
  files?: string[];
  /** Keep the sandbox running as a server (restarted on failure, asleep when idle). */
  alwaysOn?: boolean;
  /** alwaysOn: seconds without traffic before the sandbox sleeps (0 = never). */
  idleTimeout?: number | null;
  /** Maximum run time in seconds (exit code 124 when reached). */
  timeout?: number | null;
  /** A string: the base image workspace to start from (same as `from`); true: freeze this workspace as a base image when the script succeeds (needs workspace). */
  baseImage?: string | boolean;
  /** Base image workspace to start from (copy-on-write). */
  from?: string | null;
  /** No workspace at all: fastest. */
  ephemeral?: boolean;
  /** Command run to its end before the script, at every start (and restart and wake). */
  startupCommand?: string | null;
  /** Alias of startupCommand. */
  startup?: string | null;
  /**
   * The guest image to run on, by name (e.g. "debian", "busybox"): one of the images
   * magsd has (GET /health lists them). Default: magsd's default image. Not the same
   * as baseImage, which is a workspace to start from.
   */
  image?: string | null;
  /**
   * run only. Default: wait until the job has ended (alwaysOn, url and ssh jobs:
   * until it runs). false: resolve right after the submit (and the uploads).
   */
  wait?: boolean;
}

export interface WaitOptions {
  /** Seconds to wait at most; then MagsTimeoutError (the job goes on). Default: no limit. */
  timeout?: number;
  /** Longest pause between two status polls, in seconds (default 0.5). */
  pollInterval?: number;
}

export interface SshInfo {
  host: string;
  port: number;
  user: string;
  host_key: string;
}

/** A job as the API returns it. */
export interface JobData {
  id: string;
  status: JobStatus;
  script: string;
  type: 'inline' | 'file';
  timeout: number | null;
  exit_code: number | null;
  error: string | null;
  engine: 'kvm' | 'tcg' | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  url: string | null;
  url_port?: number | null;
  ssh?: SshInfo | null;
  workspace: string | null;
  /** The guest image the job runs on (resolved at submit: magsd's default when none was asked for). */
  image?: string;
  persist?: boolean;
  base_image?: boolean;
  from?: string | null;
  ephemeral?: boolean;
  files_pending?: number;
  always_on?: boolean;
  startup_command?: string | null;
  idle_timeout?: number | null;
  sleeping?: boolean;
  restarts?: number;
  cron_id?: string;
  [key: string]: unknown;
}

export interface LogEntry {
  seq: number;
  stream: 'stdout' | 'stderr' | 'system';
  data: string;
  /** ISO 8601; absent in streamed entries. */
  time?: string;
}

/** The last line of a followed log: how the job ended. */
export interface LogEnd {
  status: JobStatus;
  exit_code: number | null;
  error: string | null;
}

export declare class Job {
  private constructor();
  id: string;
  status: JobStatus;
  /** The script's exit code (124 after a timeout), null while it runs or when the sandbox failed. */
  exitCode: number | null;
  /** Why it failed ("stopped", ...), or null. */
  error: string | null;
  /** Public URL, when the job has one. */
  url: string | null;
  workspace: string | null;
  /** The guest image it runs on ("debian", "busybox", ...): the one asked for, or magsd's default. */
  image: string | null;
  script: string | null;
  alwaysOn: boolean;
  ssh: SshInfo | null;
  /** ISO 8601 timestamps. */
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** stdout and stderr, filled by run, runAndWait, wait() and refresh({ logs: true }); '' otherwise. */
  logs: string;
  /** The job as the API returned it. */
  raw: JobData;
  /** True once the job completed or failed. */
  readonly done: boolean;
  /** Reloads the job; with { logs: true } its output too. */
  refresh(options?: { logs?: boolean }): Promise<this>;
  /** Waits until the job has ended and fills logs. */
  wait(options?: WaitOptions): Promise<this>;
  /** Stops the job (ConflictError when it has already ended). */
  stop(): Promise<this>;
  toJSON(): Record<string, unknown>;
}

export interface Workspace {
  name: string;
  persistent: boolean;
  base_image: boolean;
  from: string | null;
  in_use_by: string | null;
  size_bytes: number;
  on_host: boolean;
  version: number | null;
  synced_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface SyncResult {
  workspace: string;
  version: number;
  chunks: number;
  uploaded_chunks: number;
  uploaded_bytes: number;
  ms: number;
}

export interface UrlAlias {
  alias: string;
  workspace: string | null;
  job_id: string | null;
  url: string | null;
  created_at: string;
}

export interface CronJob {
  id: string;
  name: string | null;
  expression: string;
  timezone: string | null;
  script: string;
  enabled: boolean;
  next_run_at: string | null;
  last_run_at: string | null;
  last_job_id: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  options: Record<string, unknown>;
}

type CronRunFlags = Omit<RunOptions, 'script' | 'wait' | 'alwaysOn' | 'idleTimeout'>;
type Nullable<T> = { [K in keyof T]?: T[K] | null };

export interface CronCreateOptions extends CronRunFlags {
  /** 5 cron fields, or @hourly etc. */
  expression: string;
  script: string;
  name?: string | null;
  /** IANA zone, e.g. Europe/Berlin; default UTC. */
  timezone?: string | null;
  enabled?: boolean;
}

/** Fields to change; a run flag set to null is removed. */
export type CronUpdateOptions = Nullable<CronCreateOptions>;

export interface AccessOptions {
  url?: boolean;
  /** Guest port of the URL (default 8080). */
  port?: number;
  ssh?: boolean;
  sshPublicKey?: string;
}

export interface UpdateOptions {
  alwaysOn?: boolean;
  idleTimeout?: number | null;
  /** Only while the job is queued (else ConflictError). */
  timeout?: number | null;
}

export interface ListOptions {
  status?: JobStatus;
  workspace?: string;
  /** 1-1000, default 100. */
  limit?: number;
}

export declare class Mags {
  constructor(options?: ClientOptions);
  /** magsd's base URL, without /api/v1. */
  readonly apiUrl: string;
  readonly token: string;

  /** Runs a script; see RunOptions.wait for when it resolves. */
  run(scriptOrOptions: string | RunOptions): Promise<Job>;
  /** Runs a script and resolves once the job has ended (alwaysOn jobs too). */
  runAndWait(scriptOrOptions: string | RunOptions, options?: WaitOptions): Promise<Job>;
  status(jobId: string): Promise<JobStatus>;
  get(jobId: string): Promise<Job>;
  /** stdout and stderr so far, as one string. */
  logs(jobId: string): Promise<string>;
  logEntries(jobId: string, options?: { since?: number }): Promise<LogEntry[]>;
  /** Follows the output until the job ends; the iterator's return value is how it ended. */
  streamLogs(jobId: string, options?: { since?: number }): AsyncGenerator<LogEntry, LogEnd, undefined>;
  stop(jobId: string): Promise<Job>;
  list(options?: ListOptions): Promise<Job[]>;
  /** A job id (UUID): that job's workspace; anything else: the workspace of that name. */
  sync(target: string): Promise<SyncResult>;
  enableAccess(jobId: string, options: AccessOptions): Promise<Job>;
  update(jobId: string, options: UpdateOptions): Promise<Job>;

  readonly workspace: {
    list(): Promise<Workspace[]>;
    get(name: string): Promise<Workspace>;
    delete(name: string): Promise<{ deleted: string }>;
    sync(name: string): Promise<SyncResult>;
  };
  readonly urlAliases: {
    /** target: a workspace name, or { workspace } or { jobId }. */
    create(alias: string, target: string | { workspace?: string; jobId?: string }): Promise<UrlAlias>;
    list(): Promise<UrlAlias[]>;
    get(alias: string): Promise<UrlAlias>;
    delete(alias: string): Promise<{ deleted: string }>;
  };
  readonly cron: {
    create(options: CronCreateOptions): Promise<CronJob>;
    list(): Promise<CronJob[]>;
    get(id: string): Promise<CronJob>;
    update(id: string, fields: CronUpdateOptions): Promise<CronJob>;
    delete(id: string): Promise<{ deleted: true; id: string }>;
  };
}

export declare class MagsError extends Error {
  constructor(message: string, info?: { status?: number | null; body?: unknown; cause?: unknown });
  /** HTTP status of the reply, or null when there was none. */
  status: number | null;
  /** The parsed error body ({ error, code }), or null. */
  body: { error: string; code: number } | null;
}
/** 400 or 413. */
export declare class BadRequestError extends MagsError {}
/** 401, or no token found by new Mags(). */
export declare class AuthenticationError extends MagsError {}
/** 404. */
export declare class NotFoundError extends MagsError {}
/** 409. */
export declare class ConflictError extends MagsError {}
/** 5xx. */
export declare class ServerError extends MagsError {}
/** magsd could not be reached. */
export declare class MagsConnectionError extends MagsError {}
/** A wait ran out of time; the job goes on. */
export declare class MagsTimeoutError extends MagsError {
  jobId: string | null;
  job: Job | null;
}
