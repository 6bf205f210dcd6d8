# frozen_string_literal: true

require 'json'
require 'net/http'
require 'time'
require 'uri'

module Humantask
  DEFAULT_BASE_URL = 'http://localhost:8080'
  BASE_URL_VARIABLE = 'HUMANTASK_URL'
  API_KEY_VARIABLE = 'HUMANTASK_API_KEY'
  # Read when HUMANTASK_URL is not set; deprecated, to be removed.
  DEPRECATED_BASE_URL_VARIABLE = 'SCALE_API_URL'
  # Answers that say "not now": the request was not carried out, or a proxy does not know.
  RETRY_STATUSES = [429, 502, 503, 504].freeze
  # Methods the HTTP spec makes idempotent: repeating them changes nothing more.
  IDEMPOTENT_METHODS = %w[GET HEAD OPTIONS PUT DELETE].freeze
  # No answer, for a reason that trying again may cure.
  CONNECTION_ERRORS = [Errno::ECONNREFUSED, Errno::ECONNRESET, Errno::ECONNABORTED, Errno::EHOSTUNREACH,
                       Errno::ENETUNREACH, Errno::EPIPE, SocketError, EOFError, IOError,
                       Net::HTTPBadResponse].freeze
  TIMEOUT_ERRORS = [Net::OpenTimeout, Net::ReadTimeout, Net::WriteTimeout].freeze

  # A Retry-After header in seconds: delay-seconds, or an HTTP date (the time from `now`
  # until it, never negative); nil when absent or unreadable.
  def self.retry_after_seconds(value, now: Time.now)
    text = value.to_s.strip
    return nil if text.empty?

    seconds = Float(text, exception: false)
    if seconds.nil?
      begin
        seconds = Time.httpdate(text) - now
      rescue ArgumentError
        return nil
      end
    end
    seconds.finite? ? [seconds, 0.0].max : nil
  end

  # The client's one place for HTTP: Basic auth with the key, JSON in and out, retries,
  # and error answers turned into errors. Resources (`api.tasks`) describe requests and
  # call `request` or `page`.
  class APIClient
    attr_reader :base_url, :tasks, :projects, :batches, :timeout, :max_retries, :backoff, :max_backoff

    # The Scale SDK's `APIClient.authorize!('YOUR_API_KEY')`. The key defaults to
    # HUMANTASK_API_KEY, `base_url` to HUMANTASK_URL, then http://localhost:8080; with or
    # without `/v1`. Options: timeout (seconds per attempt, 30), max_retries (2), backoff
    # (0.5 s), max_backoff (8 s).
    def self.authorize!(api_key = nil, **options)
      new(api_key, **options)
    end

    def initialize(api_key = nil, base_url: nil, timeout: 30, max_retries: 2, backoff: 0.5, max_backoff: 8.0)
      api_key ||= ENV.fetch(API_KEY_VARIABLE, nil)
      raise ArgumentError, "an API key is required: pass one, or set #{API_KEY_VARIABLE}" if api_key.to_s.empty?

      @api_key = api_key
      @base_url = self.class.api_root(base_url || self.class.base_url_from_environment)
      @timeout = timeout
      @max_retries = max_retries
      @backoff = backoff
      @max_backoff = max_backoff
      @tasks = Tasks.new(self)
      @projects = Projects.new(self)
      @batches = Batches.new(self)
    end

    def self.base_url_from_environment
      url = ENV.fetch(BASE_URL_VARIABLE, nil)
      return url if url && !url.empty?

      url = ENV.fetch(DEPRECATED_BASE_URL_VARIABLE, nil)
      return DEFAULT_BASE_URL if url.nil? || url.empty?

      warn "#{DEPRECATED_BASE_URL_VARIABLE} is deprecated: set #{BASE_URL_VARIABLE} instead", category: :deprecated
      url
    end

    def self.api_root(url)
      url = url.to_s.sub(%r{/+\z}, '')
      raise ArgumentError, "base_url must be an http(s) URL, not #{url}" unless url.match?(%r{\Ahttps?://})

      url += '/v1' unless url.end_with?('/v1')
      "#{url}/"
    end

    # Any request under /v1/ (`path` relative to it): the parsed JSON (or what the block
    # makes of it and the response), or a Humantask::Error. `retryable`: may it be sent
    # again after a failure (a 429, 502, 503, 504, no answer in time, no connection)? By
    # default only GET, HEAD, OPTIONS, PUT and DELETE are; say so for other calls that
    # cannot do anything twice.
    def request(method, path, query: nil, json: nil, body: nil, headers: {}, retryable: nil)
      method = method.to_s.upcase
      retryable = IDEMPOTENT_METHODS.include?(method) if retryable.nil?
      response = send_with_retries(method, path.sub(%r{\A/+}, ''), query, json, body, headers, retryable)
      parsed = parse(response.body)
      raise api_error(response, parsed) unless (200..299).cover?(response.code.to_i)

      block_given? ? yield(parsed, response) : parsed
    end

    # One page of a list at `path`, its items made by the block; `next_page` asks for the next.
    def page(path, query, &make)
      request('GET', path, query: query) do |body, response|
        Page.new(body.map(&make), next_page_query(response)) { |next_query| page(path, next_query, &make) }
      end
    end

    # The wait before retry n (0-based): Retry-After when given, else full jitter (a random
    # time between 0 and backoff * 2**n); never more than max_backoff.
    def retry_delay(retry_number, response = nil)
      after = response && Humantask.retry_after_seconds(response['Retry-After'])
      wait = after || (rand * [@max_backoff, @backoff * (2**[retry_number, 64].min)].min)
      wait.clamp(0, @max_backoff)
    end

    private

    NEXT_LINK = /<([^>]*)>\s*;\s*rel="?next"?/.freeze

    # The next page's query, asked of our own host (whatever host the server saw), or nil.
    def next_page_query(response)
      match = NEXT_LINK.match(response['Link'].to_s)
      match && URI.decode_www_form(URI(match[1]).query.to_s).to_h
    end

    def send_with_retries(method, path, query, json, body, headers, retryable)
      uri = URI.join(@base_url, path)
      uri.query = URI.encode_www_form(query.compact) if query && !query.empty?
      retry_number = 0
      loop do
        can_retry = retryable && retry_number < @max_retries
        begin
          response = attempt(uri, build(method, uri, json, body, headers))
        rescue *TIMEOUT_ERRORS, *CONNECTION_ERRORS => e
          raise connection_error(e) unless can_retry

          sleep retry_delay(retry_number)
        else
          return response unless can_retry && RETRY_STATUSES.include?(response.code.to_i)

          sleep retry_delay(retry_number, response)
        end
        retry_number += 1
      end
    end

    def attempt(uri, request)
      http = Net::HTTP.new(uri.host, uri.port)
      http.use_ssl = uri.scheme == 'https'
      http.open_timeout = http.read_timeout = http.write_timeout = @timeout
      http.max_retries = 0 # the retries are this client's, by its rules
      http.start { |connection| connection.request(request) }
    end

    def connection_error(error)
      if TIMEOUT_ERRORS.any? { |kind| error.is_a?(kind) }
        APITimeoutError.new("no answer in time: #{error.message}")
      else
        APIConnectionError.new("could not reach the server: #{error.class}: #{error.message}")
      end
    end

    def api_error(response, parsed)
      Humantask.error_for(response.code.to_i, parsed, response.message || 'HTTP error',
                          request_id: response['X-Request-Id'],
                          retry_after: Humantask.retry_after_seconds(response['Retry-After']))
    end

    def build(method, uri, json, body, headers)
      request = Net::HTTPGenericRequest.new(method, !json.nil? || !body.nil?, true, uri)
      request.basic_auth(@api_key, '')
      request['Accept'] = 'application/json'
      request['User-Agent'] = "humantask-ruby/#{VERSION}"
      if json.nil?
        request.body = body
      else
        request['Content-Type'] = 'application/json'
        request.body = JSON.generate(json)
      end
      headers.each { |name, value| request[name] = value }
      request
    end

    def parse(body)
      return nil if body.nil? || body.empty?

      JSON.parse(body)
    rescue JSON::ParserError
      body
    end
  end
end
