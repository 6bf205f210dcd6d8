# frozen_string_literal: true

require 'uri'

module Humantask
  # `api.tasks`: create, get, list, cancel, and a task's callback log.
  class Tasks
    LIST_FILTERS = %w[status type unique_id start_time end_time limit offset next_token].freeze

    def initialize(client)
      @client = client
    end

    # POST /v1/task/categorize: the new task, status `pending`. Every parameter given is
    # sent (one a newer server knows and this client does not, too). Retried after a
    # failure only with a `unique_id`, with which the server makes the task once.
    def createCategorization(params = {}, **keywords) # rubocop:disable Naming/MethodName
      json = given(params.merge(keywords))
      @client.request('POST', 'task/categorize', json: json, retryable: json.key?('unique_id')) do |body|
        Task.new(body)
      end
    end
    alias create_categorization createCategorization

    def get(task_id)
      @client.request('GET', task_path(task_id)) { |body| Task.new(body) }
    end

    # The caller's tasks, newest first, across pages (`limit` is the page size): an
    # Enumerator that asks for a page only when the tasks before it are used up, so
    # `.first(3)` asks for no more than it needs.
    def list(params = {}, **filters)
      query = given(params.merge(filters), LIST_FILTERS).transform_values(&:to_s)
      Enumerator.new do |yielder|
        page = list_page(**query.transform_keys(&:to_sym))
        while page
          page.each { |task| yielder << task }
          page = page.next_page
        end
      end
    end

    # One page of the caller's tasks (one request): a Page (`items`, `next_page?`,
    # `next_token`, `next_page`). Takes `next_token:` besides the filters of `list`.
    def list_page(params = {}, **filters)
      query = given(params.merge(filters), LIST_FILTERS).transform_values(&:to_s)
      @client.page('tasks', query) { |fields| Task.new(fields) }
    end

    # Cancels a pending task; canceling a canceled task answers it again (so it is retried).
    def cancel(task_id)
      @client.request('POST', task_path(task_id, '/cancel'), retryable: true) { |body| Task.new(body) }
    end

    # The task's callback deliveries, oldest first; empty until it is completed.
    def callbacks(task_id)
      @client.request('GET', task_path(task_id, '/callbacks')) do |body|
        body.map { |attempt| CallbackAttempt.new(**attempt.transform_keys(&:to_sym).slice(*CallbackAttempt.members)) }
      end
    end

    private

    def task_path(task_id, suffix = '')
      raise ArgumentError, 'task_id must be a non-empty string' unless task_id.is_a?(String) && !task_id.empty?

      "task/#{URI.encode_www_form_component(task_id)}#{suffix}"
    end

    # The given values (only `names`, when named) without nil ones, times as ISO 8601.
    def given(values, names = nil)
      values = values.transform_keys(&:to_s)
      values = values.slice(*names) if names
      values.compact.transform_values do |value|
        value.respond_to?(:iso8601) ? value.iso8601(3) : value
      end
    end
  end
end
