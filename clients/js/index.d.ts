// Types of humantask's JavaScript client (index.js).

export interface TaskParams {
  attachment_type: 'text' | 'image' | 'video' | 'audio' | 'website';
  attachment: string;
  categories: string[];
}

export interface TaskResponse {
  category: string;
  status_code: number;
}

export class Task {
  task_id: string;
  created_at: string;
  completed_at?: string;
  callback_url: string;
  type: 'categorization';
  status: 'pending' | 'completed' | 'canceled';
  instruction: string;
  params: TaskParams;
  response?: TaskResponse;
  metadata?: Record<string, unknown>;
  unique_id?: string;
  canceled_at?: string;
}

export interface CallbackAttempt {
  attempt: number;
  at: string;
  status_code: number | null;
  error: string | null;
  delivered: boolean;
}

export interface CreateCategorizationParams {
  callback_url: string;
  instruction: string;
  attachment_type: TaskParams['attachment_type'];
  attachment: string;
  categories: string[];
  metadata?: Record<string, unknown>;
  unique_id?: string;
  callback_format?: 'form' | 'json';
}

export interface ListFilters {
  status?: Task['status'];
  type?: 'categorization';
  unique_id?: string;
  start_time?: string | Date;
  end_time?: string | Date;
  limit?: number;
  offset?: number;
}

export interface ClientOptions {
  baseUrl?: string;
  timeoutMs?: number;
  maxRetries?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

export class TaskList implements AsyncIterable<Task>, PromiseLike<Task[]> {
  [Symbol.asyncIterator](): AsyncIterator<Task>;
  toArray(): Promise<Task[]>;
  then<A = Task[], B = never>(
    onFulfilled?: ((tasks: Task[]) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B>;
}

export class Tasks {
  createCategorization(params: CreateCategorizationParams): Promise<Task>;
  get(taskId: string): Promise<Task>;
  list(filters?: ListFilters): TaskList;
  cancel(taskId: string): Promise<Task>;
  callbacks(taskId: string): Promise<CallbackAttempt[]>;
}

export class Client {
  constructor(apiKey: string, options?: ClientOptions);
  readonly baseUrl: string;
  readonly tasks: Tasks;
  request(method: string, path: string, options?: {
    query?: Record<string, string | number>;
    json?: unknown;
    body?: string | Uint8Array;
    headers?: Record<string, string>;
  }): Promise<unknown>;
}

export function authorize(apiKey: string, options?: ClientOptions): Client;

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
export const VERSION: string;

export class ScaleError extends Error {
  statusCode: number | null;
  body: unknown;
}
export class APIConnectionError extends ScaleError {}
export class APITimeoutError extends APIConnectionError {}
export class APIError extends ScaleError {}
export class BadRequest extends APIError {}
export class Unauthorized extends APIError {}
export class NotFound extends APIError {}
export class MethodNotAllowed extends APIError {}
export class Conflict extends APIError {}
export class PayloadTooLarge extends APIError {}
export class UnsupportedMediaType extends APIError {}
export class ServiceUnavailable extends APIError {}
