# frozen_string_literal: true

require 'json'
require 'net/http'
require 'time'
require 'uri'

module Scale
  DEFAULT_BASE_URL = 'http://localhost:8080'

  # The HTTP side: Basic auth with the key, JSON in and out, 503s retried with backoff.
  class APIClient
    attr_reader :base_url, :tasks

    # The seed's `Scale::APIClient.authorize!('YOUR_API_KEY')`. `base_url` defaults to
    # SCALE_API_URL, then http://localhost:8080; with or without `/v1`.
    def self.authorize!(api_key, **options)
      new(api_key, **options)
    end

    def initialize(api_key, base_url: nil, timeout: 30, max_retries: 2, backoff: 0.5, max_backoff: 8.0)
      raise ArgumentError, 'an API key is required' if api_key.nil? || api_key.empty?

      @api_key = api_key
      @base_url = self.class.api_root(base_url || ENV['SCALE_API_URL'] || DEFAULT_BASE_URL)
      @timeout = timeout
      @max_retries = max_retries
      @backoff = backoff
      @max_backoff = max_backoff
      @tasks = Tasks.new(self)
    end

    def self.api_root(url)
      url = url.to_s.sub(%r{/+\z}, '')
      raise ArgumentError, "base_url must be an http(s) URL, not #{url}" unless url.match?(%r{\Ahttps?://})

      url += '/v1' unless url.end_with?('/v1')
      "#{url}/"
    end

    # Any request under /v1/ (`path` relative to it): the parsed JSON, or a Scale::Error.
    def request(method, path, query: nil, json: nil, body: nil, headers: {})
      response = send_with_retries(method, path.sub(%r{\A/+}, ''), query, json, body, headers)
      parsed = parse(response.body)
      status = response.code.to_i
      raise Scale.error_for(status, parsed, response.message || 'HTTP error') unless (200..299).cover?(status)

      block_given? ? yield(parsed, response) : parsed
    end

    # Wait before retry n (0-based): Retry-After, else exponential with jitter; capped.
    def retry_delay(retry_number, response)
      wait = @backoff * (2**retry_number) * (0.5 + (rand / 2))
      retry_after = response && response['Retry-After']
      wait = Float(retry_after, exception: false) || wait if retry_after
      wait.clamp(0, @max_backoff)
    end

    private

    def send_with_retries(method, path, query, json, body, headers)
      uri = URI.join(@base_url, path)
      uri.query = URI.encode_www_form(query.compact) if query && !query.empty?
      request = build(method, uri, json, body, headers)
      retry_number = 0
      loop do
        response = attempt(uri, request, retry_number)
        return response if response && (response.code != '503' || retry_number >= @max_retries)

        sleep retry_delay(retry_number, response)
        retry_number += 1
      end
    end

    def attempt(uri, request, retry_number)
      Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == 'https',
                                          open_timeout: @timeout, read_timeout: @timeout) do |http|
        http.request(request)
      end
    rescue Net::OpenTimeout, Net::ReadTimeout => e
      raise APITimeoutError, "no answer in time: #{e.message}"
    rescue Errno::ECONNREFUSED, Errno::ECONNRESET, Errno::EHOSTUNREACH, SocketError => e
      raise APIConnectionError, "could not reach the server: #{e.message}" if retry_number >= @max_retries

      nil
    end

    def build(method, uri, json, body, headers)
      request = Net::HTTPGenericRequest.new(method.to_s.upcase, !json.nil? || !body.nil?, true, uri)
      request.basic_auth(@api_key, '')
      request['Accept'] = 'application/json'
      request['User-Agent'] = "humantask-scale-ruby/#{VERSION}"
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

  # `api.tasks`: create, get, list, cancel, and a task's callback log.
  class Tasks
    CREATE_FIELDS = %w[callback_url instruction attachment_type attachment categories metadata unique_id
                       callback_format].freeze
    LIST_FILTERS = %w[status type unique_id start_time end_time limit offset].freeze
    NEXT_LINK = /<([^>]*)>\s*;\s*rel="?next"?/.freeze

    def initialize(client)
      @client = client
    end

    # POST /v1/task/categorize: the new task, status `pending`.
    def createCategorization(params = {}, **keywords) # rubocop:disable Naming/MethodName
      @client.request('POST', 'task/categorize', json: pick(params.merge(keywords), CREATE_FIELDS)) do |body|
        Task.new(body)
      end
    end
    alias create_categorization createCategorization

    def get(task_id)
      @client.request('GET', task_path(task_id)) { |body| Task.new(body) }
    end

    # The caller's tasks, newest first, following the Link header from page to page
    # (`limit` is the page size): an Enumerator, so `.first(3)` asks for no more than it needs.
    def list(params = {}, **filters)
      query = pick(params.merge(filters), LIST_FILTERS).transform_values(&:to_s)
      Enumerator.new do |yielder|
        while query
          query = @client.request('GET', 'tasks', query: query) do |body, response|
            body.each { |fields| yielder << Task.new(fields) }
            next_page_query(response)
          end
        end
      end
    end

    def cancel(task_id)
      @client.request('POST', task_path(task_id, '/cancel')) { |body| Task.new(body) }
    end

    # The task's callback deliveries, oldest first; empty until it is completed.
    def callbacks(task_id)
      @client.request('GET', task_path(task_id, '/callbacks')) do |body|
        body.map { |attempt| CallbackAttempt.new(**attempt.transform_keys(&:to_sym)) }
      end
    end

    private

    def task_path(task_id, suffix = '')
      raise ArgumentError, 'task_id must be a non-empty string' unless task_id.is_a?(String) && !task_id.empty?

      "task/#{URI.encode_www_form_component(task_id)}#{suffix}"
    end

    def pick(values, names)
      values.transform_keys(&:to_s).slice(*names).compact.transform_values do |value|
        value.respond_to?(:iso8601) ? value.iso8601(3) : value
      end
    end

    # The next page's query, asked of our own host (whatever host the server saw), or nil.
    def next_page_query(response)
      match = NEXT_LINK.match(response['Link'].to_s)
      match && URI.decode_www_form(URI(match[1]).query.to_s).to_h
    end
  end
end
