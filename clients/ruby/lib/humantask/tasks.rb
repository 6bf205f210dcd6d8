# frozen_string_literal: true

require 'uri'

module Humantask
  # Scale's current API, beside /v1: projects, batches, audits and tags live under
  # /scale/v1/, which a path relative to the client's `.../v1/` reaches as `../scale/v1/`.
  SCALE = '../scale/v1/'

  # `api.tasks`: create, get, list, cancel, a task's callback log, and Scale's audits,
  # tags, metadata and unique_id.
  class Tasks
    LIST_FILTERS = %w[status type unique_id start_time end_time limit offset next_token].freeze

    def initialize(client)
      @client = client
    end

    # POST /v1/task/categorize: the new task, status `pending`. Every parameter given is
    # sent (one a newer server knows and this client does not, too). Retried after a
    # failure only with a `unique_id`, with which the server makes the task once. In a
    # `project` (whose params fill in what is left out) or a `batch`, or with `tags`:
    # Scale's create under /scale/v1/.
    def createCategorization(params = {}, **keywords) # rubocop:disable Naming/MethodName
      json = given(params.merge(keywords))
      path = %w[project batch tags].any? { |name| json.key?(name) } ? "#{SCALE}task/categorization" : 'task/categorize'
      @client.request('POST', path, json: json, retryable: json.key?('unique_id')) do |body|
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
    # `clear_unique_id: true` frees its unique_id for another task.
    def cancel(task_id, clear_unique_id: false)
      if clear_unique_id
        return @client.request('POST', SCALE + task_path(task_id, '/cancel'), query: { 'clear_unique_id' => 'true' },
                                                                               retryable: true) { |body| Task.new(body) }
      end

      @client.request('POST', task_path(task_id, '/cancel'), retryable: true) { |body| Task.new(body) }
    end

    # Accept a completed task's answer, or reject it: it goes back to workers who have not
    # answered it, and is called back again once completed again.
    def audit(task_id, accepted:, comments: nil)
      json = given({ accepted: accepted, comments: comments })
      @client.request('POST', SCALE + task_path(task_id, '/audit'), json: json) { |body| Task.new(body) }
    end

    def set_tags(task_id, tags)
      change_tags('POST', task_id, tags)
    end

    def add_tags(task_id, tags)
      change_tags('PUT', task_id, tags)
    end

    def delete_tags(task_id, tags)
      change_tags('DELETE', task_id, tags)
    end

    def set_metadata(task_id, metadata)
      @client.request('POST', SCALE + task_path(task_id, '/setMetadata'), json: metadata, retryable: true) do |body|
        Task.new(body)
      end
    end

    # Gives the task a unique_id (Humantask::Conflict if another task has it); nil clears it.
    def set_unique_id(task_id, unique_id)
      path = SCALE + task_path(task_id, '/unique_id')
      return @client.request('DELETE', path) { |body| Task.new(body) } if unique_id.nil?

      @client.request('POST', path, json: { 'unique_id' => unique_id }, retryable: true) { |body| Task.new(body) }
    end

    # The task's callback deliveries, oldest first; empty until it is completed.
    def callbacks(task_id)
      @client.request('GET', task_path(task_id, '/callbacks')) do |body|
        body.map { |attempt| CallbackAttempt.new(**attempt.transform_keys(&:to_sym).slice(*CallbackAttempt.members)) }
      end
    end

    private

    def change_tags(method, task_id, tags)
      @client.request(method, SCALE + task_path(task_id, '/tags'), json: tags.to_a, retryable: true) do |body|
        Task.new(body)
      end
    end

    def task_path(task_id, suffix = '')
      raise ArgumentError, 'task_id must be a non-empty string' unless task_id.is_a?(String) && !task_id.empty?

      # A form's encoding, but a space as %20: a path's `+` is a plus.
      "task/#{URI.encode_www_form_component(task_id).gsub('+', '%20')}#{suffix}"
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
