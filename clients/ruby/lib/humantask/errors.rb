# frozen_string_literal: true

module Humantask
  # Anything the API, or the connection to it, went wrong with. `message` is the server's
  # own (its `{"error": ...}`), `status_code` the HTTP status (nil without an answer),
  # `request_id` the id the server gave the request (its X-Request-Id: quote it when asking
  # an operator), `retry_after` the server's Retry-After in seconds, `body` the answer.
  class Error < StandardError
    attr_reader :status_code, :body, :request_id, :retry_after

    def initialize(message, status_code = nil, body = nil, request_id: nil, retry_after: nil)
      super(message)
      @status_code = status_code
      @body = body
      @request_id = request_id
      @retry_after = retry_after
    end
  end

  # No answer: the server could not be reached or the connection broke (after the retries).
  class APIConnectionError < Error; end
  # No answer within the client's `timeout` (after the retries).
  class APITimeoutError < APIConnectionError; end
  # An error status; this class itself for a status without a class of its own.
  class APIError < Error; end
  class BadRequest < APIError; end
  class Unauthorized < APIError; end
  class NotFound < APIError; end
  class MethodNotAllowed < APIError; end
  class Conflict < APIError; end
  class PayloadTooLarge < APIError; end
  class UnsupportedMediaType < APIError; end
  # 429: too many requests a second with this key; `retry_after` says when to come back.
  class RateLimited < APIError; end
  # 5xx: the server, or a proxy in front of it, failed.
  class ServerError < APIError; end
  # 503: overloaded, or a service behind the gateway did not answer in time.
  class ServiceUnavailable < ServerError; end

  ERRORS_BY_STATUS = {
    400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 405 => MethodNotAllowed,
    409 => Conflict, 413 => PayloadTooLarge, 415 => UnsupportedMediaType, 429 => RateLimited,
    503 => ServiceUnavailable
  }.freeze

  # The error for an answer: its class by status, its message from the body.
  def self.error_for(status, body, fallback, request_id: nil, retry_after: nil)
    message = body.is_a?(Hash) && body['error'].is_a?(String) && !body['error'].empty? ? body['error'] : fallback
    error_class = ERRORS_BY_STATUS.fetch(status) { status >= 500 ? ServerError : APIError }
    error_class.new(message, status, body, request_id: request_id, retry_after: retry_after)
  end
end
