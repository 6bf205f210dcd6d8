// Types of humantask's JavaScript client (index.js).

export interface TaskParams {
  attachment_type: 'text' | 'image' | 'video' | 'audio' | 'website' | (string & {});
  attachment: string;
  categories: string[];
  [field: string]: unknown;
}

export interface TaskResponse {
  category: string;
  status_code: number;
  /** With several workers per task: the probability of `category`, 0-1. */
  confidence?: number;
  /** With several workers per task: counted answers per category. */
  votes?: Record<string, number>;
  [field: string]: unknown;
}

/** The statuses this client knows; a newer server may send another. */
export type KnownTaskStatus = 'pending' | 'completed' | 'canceled';
export const TASK_STATUSES: readonly KnownTaskStatus[];

export class Task {
  task_id: string;
  created_at: string;
  completed_at?: string;
  callback_url?: string;
  type: 'categorization' | (string & {});
  status: KnownTaskStatus | (string & {});
  instruction: string;
  params: TaskParams;
  response?: TaskResponse;
  metadata?: Record<string, unknown>;
  unique_id?: string;
  canceled_at?: string;
  min_workers?: number;
  max_workers?: number;
  confidence?: number;
  gold_category?: string;
  /** Scale's fields, on the tasks its calls answer (projects, batches, audits, tags). */
  updated_at?: string;
  project?: string;
  batch?: string;
  tags?: string[];
  customer_review_status?: 'accepted' | 'rejected' | (string & {});
  /** Fields of a newer server come through as they are. */
  [field: string]: unknown;
}

export interface CallbackAttempt {
  attempt: number;
  at: string;
  status_code: number | null;
  error: string | null;
  delivered: boolean;
}

export interface CreateCategorizationParams {
  callback_url?: string;
  /** Required, unless the task's project gives it (so with each of the next three). */
  instruction?: string;
  attachment_type?: TaskParams['attachment_type'];
  attachment?: string;
  categories?: string[];
  metadata?: Record<string, unknown>;
  /** With it, the create is retried after a failure (the server makes the task once). */
  unique_id?: string;
  callback_format?: 'form' | 'json';
  /** A project, whose params fill in what is left out. */
  project?: string;
  /** A batch (of its project), while it is staging. */
  batch?: string;
  tags?: string[];
  /** Parameters of a newer server are sent as they are. */
  [param: string]: unknown;
}

export interface ListFilters {
  status?: Task['status'];
  type?: Task['type'];
  unique_id?: string;
  start_time?: string | Date;
  end_time?: string | Date;
  /** The page size, 1-100. */
  limit?: number;
  offset?: number;
}

export interface PageFilters extends ListFilters {
  /** The cursor of a page's `nextToken`. */
  next_token?: string;
}

export interface ClientOptions {
  /** The server's address, with or without /v1; else HUMANTASK_URL, else http://localhost:8080. */
  baseUrl?: string;
  /** Per attempt, 30000 by default. */
  timeoutMs?: number;
  /** How many times a retryable call is tried again (2). */
  maxRetries?: number;
  /** The base of the exponential backoff (500). */
  backoffMs?: number;
  /** The most any wait between attempts lasts, Retry-After included (8000). */
  maxBackoffMs?: number;
  /** The fetch to send with (the global one by default). */
  fetch?: typeof fetch;
}

export class Page<T> implements Iterable<T> {
  readonly items: T[];
  readonly hasNext: boolean;
  /** The server's cursor for the next page (pass it back as `next_token`), or null. */
  readonly nextToken: string | null;
  /** The next page (one request), or null after the last. */
  nextPage(): Promise<Page<T> | null>;
  [Symbol.iterator](): Iterator<T>;
}

export class PageIterator<T> implements AsyncIterable<T> {
  [Symbol.asyncIterator](): AsyncIterator<T>;
  pages(): AsyncGenerator<Page<T>>;
  toArray(): Promise<T[]>;
}

export class Tasks {
  createCategorization(params: CreateCategorizationParams): Promise<Task>;
  create_categorization(params: CreateCategorizationParams): Promise<Task>;
  get(taskId: string): Promise<Task>;
  list(filters?: ListFilters): PageIterator<Task>;
  listPage(filters?: PageFilters): Promise<Page<Task>>;
  /** `clearUniqueId` frees the task's unique_id for another task. */
  cancel(taskId: string, options?: { clearUniqueId?: boolean }): Promise<Task>;
  callbacks(taskId: string): Promise<CallbackAttempt[]>;
  /** Accept a completed task's answer, or reject it (back to workers who have not answered it). */
  audit(taskId: string, accepted: boolean, comments?: string): Promise<Task>;
  setTags(taskId: string, tags: string[]): Promise<Task>;
  addTags(taskId: string, tags: string[]): Promise<Task>;
  deleteTags(taskId: string, tags: string[]): Promise<Task>;
  setMetadata(taskId: string, metadata: Record<string, unknown>): Promise<Task>;
  /** null clears it. */
  setUniqueId(taskId: string, uniqueId: string | null): Promise<Task>;
}

/** A project: its params, the defaults of its tasks' create parameters, are the last of `param_history`. */
export interface Project {
  type: string;
  name: string;
  param_history: Array<Record<string, unknown> & { version: number; created_at: string }>;
  created_at: string;
  [field: string]: unknown;
}

export class Projects {
  create(name: string, params?: Record<string, unknown>): Promise<Project>;
  get(name: string): Promise<Project>;
  list(): Promise<Project[]>;
  /** A new version of the params; `patch` keeps those not given. */
  setParams(name: string, params?: Record<string, unknown>, options?: { patch?: boolean }): Promise<Project>;
  set_params(name: string, params?: Record<string, unknown>, options?: { patch?: boolean }): Promise<Project>;
}

/** A batch: `staging`, `in_progress` once finalized, `completed` when its tasks are done. */
export interface Batch {
  name: string;
  project: string;
  status: 'staging' | 'in_progress' | 'completed' | string;
  callback: string;
  metadata: Record<string, unknown>;
  created_at: string;
  finalized_at?: string;
  completed_at?: string;
  [field: string]: unknown;
}

export interface BatchStatus {
  status: string;
  pending: number;
  completed: number;
  canceled: number;
}

export class Batches {
  create(project: string, name: string,
    options?: { callback?: string; metadata?: Record<string, unknown> }): Promise<Batch>;
  finalize(name: string): Promise<Batch>;
  get(name: string): Promise<Batch>;
  status(name: string): Promise<BatchStatus>;
  /** Newest first: `for await (const batch of api.batches.list({ project }))`. */
  list(filters?: { project?: string; status?: string }): AsyncGenerator<Batch>;
}

export class Client {
  constructor(apiKey?: string, options?: ClientOptions);
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly tasks: Tasks;
  readonly projects: Projects;
  readonly batches: Batches;
  /** The wait before retry n (0-based): Retry-After when given, else full jitter; capped. */
  retryDelayMs(retry: number, headers?: Headers | null): number;
  request(method: string, path: string, options?: {
    query?: Record<string, string | number>;
    json?: unknown;
    body?: string | Uint8Array;
    headers?: Record<string, string>;
    /** Retry it; by default only GET, HEAD, OPTIONS, PUT and DELETE are. */
    idempotent?: boolean;
  }): Promise<unknown>;
}

export function authorize(apiKey?: string, options?: ClientOptions): Client;
export function authorize(options: ClientOptions): Client;

/**
 * Did humantask send this callback? Checks the Standard Webhooks headers (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature`) against the raw body; false, never an
 * exception, for anything malformed.
 */
export function verifyCallback(
  secret: string,
  headers: Record<string, string | string[] | undefined> | Headers,
  body: string | Uint8Array,
  options?: { toleranceSeconds?: number | null; now?: number },
): boolean;
/** The callback's object (form or JSON); form fields naming `__proto__`, `constructor` or `prototype` are left out. */
export function parseCallback(body: string | Uint8Array, contentType?: string): any;
/** The `webhook-signature` value (Standard Webhooks, `v1,<base64>`) for `body` sent as `msgId` at `timestamp`. */
export function sign(
  secret: string, msgId: string, timestamp: string | number, body: string | Uint8Array,
): string;
/** A Retry-After header (seconds or an HTTP date) in milliseconds from `now`; null if unreadable. */
export function retryAfterMs(value: string | null | undefined, now?: number): number | null;
export const VERSION: string;
export const DEFAULT_BASE_URL: string;
export const RETRY_STATUSES: ReadonlySet<number>;

export class HumantaskError extends Error {
  /** The HTTP status; null when there was no answer. */
  statusCode: number | null;
  /** The answer's body (`{status_code, error}` from humantask). */
  body: unknown;
  /** The server's X-Request-Id for the request; quote it when asking an operator. */
  requestId: string | null;
  /** The server's Retry-After, in milliseconds. */
  retryAfterMs: number | null;
}
export class APIConnectionError extends HumantaskError {}
export class APITimeoutError extends APIConnectionError {}
export class APIError extends HumantaskError {}
export class BadRequest extends APIError {}
export class Unauthorized extends APIError {}
export class NotFound extends APIError {}
export class MethodNotAllowed extends APIError {}
export class Conflict extends APIError {}
export class PayloadTooLarge extends APIError {}
export class UnsupportedMediaType extends APIError {}
export class RateLimited extends APIError {}
export class ServerError extends APIError {}
export class ServiceUnavailable extends ServerError {}
