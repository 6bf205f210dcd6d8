'use strict';
// One error class per kind of failure, all a HumantaskError. An APIError carries the HTTP
// status (`statusCode`), the server's message (`message`), the id the server gave the
// request (`requestId`, its X-Request-Id header: quote it when asking an operator), the
// server's Retry-After in milliseconds when it sent one (`retryAfterMs`) and the body.

class HumantaskError extends Error {
  constructor(message, statusCode = null, body = null, { requestId = null, retryAfterMs = null } = {}) {
    super(message);
    this.name = this.constructor.name;
    this.statusCode = statusCode;
    this.body = body;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }
}

/** No answer: the server could not be reached or the connection broke (after the retries). */
class APIConnectionError extends HumantaskError {}
/** No answer within `timeoutMs` (after the retries). */
class APITimeoutError extends APIConnectionError {}
/** An error status; this class itself for a status without a class of its own. */
class APIError extends HumantaskError {}
class BadRequest extends APIError {}
class Unauthorized extends APIError {}
class NotFound extends APIError {}
class MethodNotAllowed extends APIError {}
class Conflict extends APIError {}
class PayloadTooLarge extends APIError {}
class UnsupportedMediaType extends APIError {}
/** 429: too many requests a second with this key; `retryAfterMs` says when to come back. */
class RateLimited extends APIError {}
/** 5xx: the server, or a proxy in front of it, failed. */
class ServerError extends APIError {}
/** 503: overloaded, or a service behind the gateway did not answer in time. */
class ServiceUnavailable extends ServerError {}

const ERRORS_BY_STATUS = {
  400: BadRequest, 401: Unauthorized, 404: NotFound, 405: MethodNotAllowed, 409: Conflict,
  413: PayloadTooLarge, 415: UnsupportedMediaType, 429: RateLimited, 503: ServiceUnavailable,
};

/** The error for an answer: its class by status, its message from the `{"error": ...}` body. */
function errorFor(status, body, fallback, details = {}) {
  const message = body && typeof body.error === 'string' && body.error ? body.error : fallback;
  const ErrorClass = ERRORS_BY_STATUS[status] || (status >= 500 ? ServerError : APIError);
  return new ErrorClass(message, status, body, details);
}

module.exports = {
  HumantaskError, APIConnectionError, APITimeoutError, APIError, BadRequest, Unauthorized, NotFound,
  MethodNotAllowed, Conflict, PayloadTooLarge, UnsupportedMediaType, RateLimited, ServerError,
  ServiceUnavailable, errorFor,
};
