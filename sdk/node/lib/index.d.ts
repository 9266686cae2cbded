// SPDX-License-Identifier: MIT
// Types of @magpiecloud/mags, written by hand: keep them in step with index.js.

/**
 * Node's Buffer where @types/node is loaded (the SDK returns Buffers), else
 * Uint8Array: the declarations need no @types/node.
 */
export type BufferType = typeof globalThis extends { Buffer: { prototype: infer B } } ? B : Uint8Array;

/** A node:stream Readable of Buffers (described here without @types/node). */
export interface ReadableStreamLike extends AsyncIterable<BufferType> {
  pipe<T>(destination: T, options?: { end?: boolean }): T;
  on(event: string, listener: (...args: any[]) => void): this;
  destroy(error?: Error): this;
  readonly readable: boolean;
}

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
  /** Queued: its limit. Running: a new limit counted from now (a job that started with a timeout can only shorten it). null: none. */
  timeout?: number | null;
}

export interface ListOptions {
  status?: JobStatus;
  workspace?: string;
  /** 1-1000, default 100. */
  limit?: number;
}

/** A sandbox: a job id, a Job, or the name of a workspace with a running job. */
export type SandboxRef = string | Job;
/** A process: its id, or the Process object. */
export type ProcessRef = number | Process;

/** One command started in a sandbox (exec or spawn). */
export interface Process {
  id: number;
  command: string;
  /** running, exited, or lost (the sandbox's VM restarted or stopped while it ran). */
  status: 'running' | 'exited' | 'lost';
  /** null while it runs; 128+N after signal N, 124 after its timeout. */
  exitCode: number | null;
  /** The signal that ended it, or null. */
  signal: number | null;
  timedOut: boolean;
  /** Why it has no exit code (it could not be started, it was lost, or deleted), else null. */
  error: string | null;
  tty: boolean;
  /** Its stdin is open for sendStdin. */
  stdin: boolean;
  detached: boolean;
  cwd: string | null;
  /** RFC 3339. */
  startedAt: string | null;
  endedAt: string | null;
  /** Bytes of output so far (the offset of the next byte). */
  outputBytes: number;
  cols: number | null;
  rows: number | null;
  /** True once it has ended (exited or lost). */
  done: boolean;
  /** The process as the API returned it (snake_case). */
  raw: Record<string, unknown>;
}

/** What exec resolves to; a non-zero exit code does not reject. */
export interface ExecResult {
  /** 124 after its timeout, 128+N after signal N. */
  exitCode: number;
  stdout: BufferType;
  stderr: BufferType;
  /** The process as it ended. */
  process: Process | null;
}

/** One event of a process's output stream. `offset` is where its bytes start; resume at offset + data.length. */
export type OutputEvent =
  | { type: 'start'; process: Process; raw: Record<string, unknown> }
  | { type: 'stdout' | 'stderr'; offset: number; data: BufferType; raw: Record<string, unknown> }
  | { type: 'lost'; offset: number; bytes: number; raw: Record<string, unknown> }
  | { type: 'exit'; offset: number; exitCode: number | null; signal: number | null; timedOut: boolean; status: 'exited' | 'lost'; error: string | null; raw: Record<string, unknown> }
  | { type: 'end'; offset: number; raw: Record<string, unknown> };

/** A file in a sandbox. */
export interface FileInfo {
  name: string;
  /** Absolute in the sandbox. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Permission bits as a number (0o644). */
  mode: number;
  /** RFC 3339. */
  mtime: string | null;
  /** A symlink's target. */
  target?: string;
  raw: Record<string, unknown>;
}

/** One change seen by files.watch. */
export interface WatchEvent {
  type: 'create' | 'modify' | 'delete' | 'move_from' | 'move_to';
  path: string;
  dir: boolean;
  raw: Record<string, unknown>;
}

/** An async iterator that can be ended early (close(), or leaving a for-await loop). */
export interface ClosableAsyncIterator<T> extends AsyncIterableIterator<T> {
  close(): Promise<void>;
}

export interface NewSandboxOptions {
  /** Push the workspace to the object store when it stops. */
  persist?: boolean;
  /** The guest image to boot (default: magsd's). */
  image?: string | null;
  /** Seconds it may stay queued (default 600). */
  timeout?: number;
}

export interface ExecOptions {
  /** Working directory (default /root). */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Seconds it may run (then exit code 124); 0 = no limit. */
  timeout?: number;
  /** Its standard input (then closed); without it stdin is empty. */
  stdin?: Uint8Array | string;
  /** Called with each stdout/stderr event as it arrives. */
  onOutput?: (event: Extract<OutputEvent, { type: 'stdout' | 'stderr' }>) => void;
}

export interface SpawnOptions {
  /** A terminal (cols x rows, default 80x24): output comes as stdout only, stdin is open. */
  tty?: boolean;
  cols?: number;
  rows?: number;
  /** Keep stdin open for sendStdin. */
  stdin?: boolean;
  cwd?: string;
  env?: Record<string, string>;
  timeout?: number;
}

export interface ProcessOutputOptions {
  /** Where to start: a byte offset (default 0, the oldest byte kept) or 'end'. */
  offset?: number | 'end';
  /** Go on until the process exits. */
  follow?: boolean;
}

export interface FileWriteOptions {
  /** Permission bits (default 0o644). */
  mode?: number;
  /** The byte count of a stream (sent as Content-Length; else it is sent chunked). */
  size?: number;
}

/** mags.files: the files of a running sandbox; paths are absolute, or relative to /root. */
export declare class Files {
  private constructor();
  /** The whole file. */
  read(sandbox: SandboxRef, path: string): Promise<BufferType>;
  /** The file as a stream (any size); rejects (NotFoundError, BadRequestError) before any data. */
  readStream(sandbox: SandboxRef, path: string): Promise<ReadableStreamLike>;
  /** Writes a file (parents are created); a stream is sent as it is read. */
  write(sandbox: SandboxRef, path: string, data: Uint8Array | string | AsyncIterable<Uint8Array | string>, options?: FileWriteOptions): Promise<FileInfo>;
  /** A directory's entries, by name. */
  list(sandbox: SandboxRef, path?: string): Promise<FileInfo[]>;
  /** One file (of a symlink itself). */
  stat(sandbox: SandboxRef, path: string): Promise<FileInfo>;
  /** Removes a file or an empty directory; recursive: a directory and all in it. */
  remove(sandbox: SandboxRef, path: string, options?: { recursive?: boolean }): Promise<void>;
  /** Creates a directory; parents (default true): missing parents too, and an existing one is fine. */
  mkdir(sandbox: SandboxRef, path: string, options?: { parents?: boolean }): Promise<FileInfo>;
  /** Resolves once the watch is in place, to its events. */
  watch(sandbox: SandboxRef, path?: string, options?: { recursive?: boolean }): Promise<ClosableAsyncIterator<WatchEvent>>;
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

  /** A long-lived sandbox on workspace `name` (its running job if it has one); resolves once it runs. */
  newSandbox(name: string, options?: NewSandboxOptions): Promise<Job>;
  /** Runs a command in a running sandbox; resolves when it has ended. `command` is run by /bin/sh -c (an array is quoted). */
  exec(sandbox: SandboxRef, command: string | string[], options?: ExecOptions): Promise<ExecResult>;
  /** Starts a command in the background. */
  spawn(sandbox: SandboxRef, command: string | string[], options?: SpawnOptions): Promise<Process>;
  /** The sandbox's processes, running and recently ended, by id. */
  processes(sandbox: SandboxRef): Promise<Process[]>;
  process(sandbox: SandboxRef, pid: ProcessRef): Promise<Process>;
  /** A process's output events: without follow up to "end" (or "exit"), with follow until "exit". */
  processOutput(sandbox: SandboxRef, pid: ProcessRef, options?: ProcessOutputOptions): ClosableAsyncIterator<OutputEvent>;
  /** Writes to a process's stdin; eof closes it after. Resolves to the bytes written. */
  sendStdin(sandbox: SandboxRef, pid: ProcessRef, data: Uint8Array | string, options?: { eof?: boolean }): Promise<number>;
  /** Sends a signal: a number or a name ('INT', 'SIGINT'); default 'TERM'. */
  kill(sandbox: SandboxRef, pid: ProcessRef, signal?: number | string): Promise<Process>;
  /** Waits for the end; with timeout (seconds) resolves after that even when it still runs (see done). */
  waitProcess(sandbox: SandboxRef, pid: ProcessRef, options?: { timeout?: number }): Promise<Process>;
  /** A tty process's terminal size. */
  resize(sandbox: SandboxRef, pid: ProcessRef, cols: number, rows: number): Promise<Process>;
  /** Forgets a process (SIGKILL first if it runs). */
  deleteProcess(sandbox: SandboxRef, pid: ProcessRef): Promise<void>;
  /** The files of a running sandbox. */
  readonly files: Files;

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
