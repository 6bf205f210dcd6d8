# frozen_string_literal: true

module Scale
  # Anything the API or the connection to it went wrong with. `message` is the server's
  # own (its `{"error": ...}`), `status_code` the HTTP status (nil without an answer).
  class Error < StandardError
    attr_reader :status_code, :body

    def initialize(message, status_code = nil, body = nil)
      super(message)
      @status_code = status_code
      @body = body
    end
  end

  class APIConnectionError < Error; end
  class APITimeoutError < APIConnectionError; end
  # An error status without a class of its own (a 500, say).
  class APIError < Error; end
  class BadRequest < APIError; end
  class Unauthorized < APIError; end
  class NotFound < APIError; end
  class MethodNotAllowed < APIError; end
  class Conflict < APIError; end
  class PayloadTooLarge < APIError; end
  class UnsupportedMediaType < APIError; end
  class ServiceUnavailable < APIError; end

  ERRORS_BY_STATUS = {
    400 => BadRequest, 401 => Unauthorized, 404 => NotFound, 405 => MethodNotAllowed,
    409 => Conflict, 413 => PayloadTooLarge, 415 => UnsupportedMediaType, 503 => ServiceUnavailable
  }.freeze

  def self.error_for(status, body, fallback)
    message = body.is_a?(Hash) && body['error'].is_a?(String) ? body['error'] : fallback
    ERRORS_BY_STATUS.fetch(status, APIError).new(message, status, body)
  end
end
