# frozen_string_literal: true

# The client on its own, against a scripted local HTTP server (no stack needed):
# configuration, retries, errors, pagination and forward compatibility; and what each of
# Scale's calls (projects, batches, audits, tags) sends and answers.
require 'minitest/autorun'
require 'set'
require 'humantask'
require_relative 'scripted_server'

module Fixtures
  TASK = {
    'task_id' => '5774cc78b01249ab09f089dd',
    'created_at' => '2016-06-30T07:38:32.861Z',
    'callback_url' => 'http://www.example.com/callback',
    'type' => 'categorization',
    'status' => 'pending',
    'instruction' => 'Is this company public or private?',
    'params' => { 'attachment_type' => 'website', 'attachment' => 'http://www.google.com/',
                  'categories' => %w[public private] }
  }.freeze
  CREATE = {
    callback_url: 'http://www.example.com/callback',
    instruction: 'Is this company public or private?',
    attachment_type: 'website',
    attachment: 'http://www.google.com/',
    categories: %w[public private]
  }.freeze
  FAST = { backoff: 0.01, max_backoff: 0.05 }.freeze

  def error_body(status, message)
    { 'status_code' => status, 'error' => message }
  end

  def with_env(values)
    saved = values.keys.to_h { |name| [name, ENV.fetch(name, nil)] }
    values.each { |name, value| ENV[name] = value }
    yield
  ensure
    saved.each { |name, value| ENV[name] = value }
  end
end

class TestConfiguration < Minitest::Test
  include Fixtures

  def test_base_url_given_then_humantask_url_then_the_deprecated_scale_api_url_then_the_default
    with_env('HUMANTASK_URL' => nil, 'SCALE_API_URL' => nil) do
      assert_equal 'http://localhost:8080/v1/', Humantask::APIClient.authorize!('k').base_url
      ENV['SCALE_API_URL'] = 'https://old.example.org'
      assert_equal 'https://old.example.org/v1/', Humantask::APIClient.authorize!('k').base_url
      ENV['HUMANTASK_URL'] = 'https://tasks.example.org/v1/'
      assert_equal 'https://tasks.example.org/v1/', Humantask::APIClient.authorize!('k').base_url
      assert_equal 'http://given:8080/v1/', Humantask::APIClient.authorize!('k', base_url: 'http://given:8080').base_url
      assert_raises(ArgumentError) { Humantask::APIClient.authorize!('k', base_url: 'localhost:8080') }
    end
  end

  def test_the_key_given_else_humantask_api_key
    with_env('HUMANTASK_API_KEY' => nil) do
      assert_raises(ArgumentError) { Humantask::APIClient.authorize! }
      ENV['HUMANTASK_API_KEY'] = 'live_from_env'
      assert_kind_of Humantask::APIClient, Humantask::APIClient.authorize!
    end
  end

  def test_it_clashes_with_nothing_named_scale
    # The official `scale` gem defines `class Scale`; this client touches no such name.
    refute Object.const_defined?(:Scale)
  end
end

class TestBackoff < Minitest::Test
  NOW = Time.utc(2026, 1, 2, 3, 4, 5)

  def test_retry_after_is_seconds_or_an_http_date
    { '2' => 2.0, '0.5' => 0.5, '0' => 0.0, '-3' => 0.0, 'Fri, 02 Jan 2026 03:04:35 GMT' => 30.0,
      'Fri, 02 Jan 2026 03:03:05 GMT' => 0.0, '' => nil, nil => nil, 'soon' => nil, 'NaN' => nil,
      'Infinity' => nil }.each do |header, seconds|
      if seconds.nil?
        assert_nil Humantask.retry_after_seconds(header, now: NOW), header.inspect
      else
        assert_equal seconds, Humantask.retry_after_seconds(header, now: NOW), header.inspect
      end
    end
  end

  def test_full_jitter_stays_between_zero_and_the_capped_exponential
    api = Humantask::APIClient.authorize!('k', backoff: 1.0, max_backoff: 6.0)
    [[0, 1.0], [1, 2.0], [2, 4.0], [3, 6.0], [9, 6.0], [5000, 6.0]].each do |retry_number, bound|
      waits = Array.new(300) { api.retry_delay(retry_number) }
      assert(waits.all? { |wait| wait >= 0 && wait <= bound }, "#{retry_number}: #{waits.max}")
      assert(waits.min < 0.1 * bound && waits.max > 0.9 * bound, retry_number.to_s)
    end
  end

  def test_retry_after_is_honoured_and_capped
    api = Humantask::APIClient.authorize!('k', backoff: 1.0, max_backoff: 3.0)
    assert_equal 2.0, api.retry_delay(0, { 'Retry-After' => '2' })
    assert_equal 3.0, api.retry_delay(0, { 'Retry-After' => '120' })
    assert_equal 3.0, api.retry_delay(0, { 'Retry-After' => (Time.now + 3600).httpdate })
  end
end

class TestAgainstAScriptedServer < Minitest::Test
  include Fixtures

  def setup
    @server = ScriptedServer.new
    @api = Humantask::APIClient.authorize!('live_test', base_url: @server.url, max_retries: 2, **FAST)
  end

  def teardown
    @server.close
  end

  def client(**options)
    Humantask::APIClient.authorize!('live_test', base_url: @server.url, **options)
  end

  def test_a_get_is_retried_on_429_502_503_504
    [429, 502, 503, 504].each do |status|
      @server.script({ status: status, body: error_body(status, 'not now') }, { body: TASK })
      assert_equal TASK['task_id'], @api.tasks.get(TASK['task_id']).task_id
      assert_equal 2, @server.requests.size, status
    end
  end

  def test_retry_after_in_seconds_is_waited_for
    @server.script({ status: 429, body: error_body(429, 'slow'), headers: { 'Retry-After' => '0.3' } }, { body: TASK })
    client(max_backoff: 5).tasks.get(TASK['task_id'])
    first, second = @server.requests
    assert_operator second.at - first.at, :>=, 0.3
  end

  def test_retry_after_as_an_http_date_is_waited_for
    # HTTP dates have whole seconds: two seconds ahead is at least one second's wait.
    @server.script({ status: 503, body: error_body(503, 'busy'), headers: { 'Retry-After' => (Time.now + 2).httpdate } },
                   { body: TASK })
    client(max_backoff: 5).tasks.get(TASK['task_id'])
    first, second = @server.requests
    assert_includes 0.9..4, second.at - first.at
  end

  def test_the_retries_give_up_with_the_last_answer
    @server.script({ status: 503, body: error_body(503, 'task-store did not answer in time') })
    error = assert_raises(Humantask::ServiceUnavailable) { @api.tasks.get(TASK['task_id']) }
    assert_kind_of Humantask::ServerError, error
    assert_equal 'task-store did not answer in time', error.message
    assert_equal 3, @server.requests.size
  end

  def test_a_create_without_unique_id_is_never_retried
    [{ status: 503, body: error_body(503, 'busy') },
     { status: 429, body: error_body(429, 'slow'), headers: { 'Retry-After' => '0' } },
     { status: 502 }, { hang_up: true }].each do |reply|
      @server.script(reply, { body: TASK })
      assert_raises(Humantask::Error) { @api.tasks.createCategorization(**CREATE) }
      assert_equal 1, @server.requests.size, reply.inspect
    end
  end

  def test_a_create_with_unique_id_is_retried_with_the_same_body
    @server.script({ status: 503, body: error_body(503, 'busy') }, { hang_up: true }, { body: TASK })
    task = @api.tasks.createCategorization(**CREATE, unique_id: 'order-1')
    assert_equal TASK['task_id'], task.task_id
    assert_equal 3, @server.requests.size
    assert_equal 1, @server.requests.map(&:body).uniq.size
    assert_equal 'order-1', JSON.parse(@server.requests.first.body)['unique_id']
  end

  def test_a_500_is_not_retried
    @server.script({ status: 500, body: error_body(500, 'internal error') }, { body: TASK })
    error = assert_raises(Humantask::ServerError) { @api.tasks.get(TASK['task_id']) }
    assert_instance_of Humantask::ServerError, error
    assert_equal 1, @server.requests.size
  end

  def test_a_broken_connection_is_retried
    @server.script({ hang_up: true }, { body: TASK })
    assert_equal TASK['task_id'], @api.tasks.cancel(TASK['task_id']).task_id
    assert_equal 2, @server.requests.size
  end

  def test_a_timeout_is_retried_then_raised
    @server.script({ body: TASK, delay: 1.0 })
    error = assert_raises(Humantask::APITimeoutError) { client(timeout: 0.2, max_retries: 1, **FAST).tasks.get('x') }
    assert_kind_of Humantask::APIConnectionError, error
    assert_nil error.status_code
    assert_equal 2, @server.requests.size
  end

  def test_a_timeout_then_an_answer
    @server.script({ body: TASK, delay: 1.0 }, { body: TASK })
    assert_equal TASK['task_id'], client(timeout: 0.2, **FAST).tasks.get(TASK['task_id']).task_id
  end

  def test_request_retries_what_is_idempotent
    @server.script({ status: 503, body: error_body(503, 'busy') }, { body: { 'ok' => true } })
    assert_raises(Humantask::ServiceUnavailable) { @api.request('POST', 'task/categorize', json: CREATE) }
    assert_equal 1, @server.requests.size
    @server.script({ status: 503, body: error_body(503, 'busy') }, { body: { 'ok' => true } })
    assert_equal({ 'ok' => true }, @api.request('POST', 'task/x/cancel', retryable: true))
    @server.script({ status: 503, body: error_body(503, 'busy') }, { body: [TASK] })
    assert_equal [TASK], @api.request('GET', '/tasks')
  end

  def test_an_error_class_per_kind_with_status_message_and_request_id
    { 400 => Humantask::BadRequest, 401 => Humantask::Unauthorized, 403 => Humantask::APIError,
      404 => Humantask::NotFound, 405 => Humantask::MethodNotAllowed, 409 => Humantask::Conflict,
      413 => Humantask::PayloadTooLarge, 415 => Humantask::UnsupportedMediaType, 429 => Humantask::RateLimited,
      500 => Humantask::ServerError, 502 => Humantask::ServerError, 503 => Humantask::ServiceUnavailable,
      504 => Humantask::ServerError }.each do |status, error_class|
      @server.script({ status: status, body: error_body(status, "the #{status} message"),
                       headers: { 'X-Request-Id' => "req-#{status}", 'Retry-After' => '3' } })
      error = assert_raises(error_class) { client(max_retries: 0).tasks.get(TASK['task_id']) }
      assert_instance_of error_class, error
      assert_kind_of Humantask::Error, error
      assert_equal [status, "the #{status} message", "req-#{status}", 3.0],
                   [error.status_code, error.message, error.request_id, error.retry_after]
      assert_equal error_body(status, "the #{status} message"), error.body
    end
  end

  def test_an_error_without_a_json_body_keeps_the_reason
    @server.script({ status: 502 })
    error = assert_raises(Humantask::ServerError) { client(max_retries: 0).tasks.get(TASK['task_id']) }
    assert_equal 'Bad Gateway', error.message
    assert_nil error.request_id
  end

  def test_unknown_statuses_types_and_fields_come_through
    @server.script({ body: TASK.merge('status' => 'in_review', 'type' => 'transcription', 'priority' => 7,
                                      'response' => { 'category' => 'public', 'votes' => { 'public' => 3 } }) })
    task = @api.tasks.get(TASK['task_id'])
    assert_equal %w[in_review transcription], [task.status, task.type]
    assert_equal 7, task['priority']
    assert_equal({ 'public' => 3 }, task.response['votes'])
    refute_includes Humantask::TASK_STATUSES, task.status
  end

  def test_create_sends_parameters_this_client_has_no_name_for
    @server.script({ body: TASK })
    @api.tasks.createCategorization(**CREATE, min_workers: 3, metadata: nil)
    assert_equal JSON.parse(JSON.generate(CREATE.merge(min_workers: 3))), JSON.parse(@server.requests.first.body)
  end

  def tasks(*ids)
    ids.map { |id| TASK.merge('task_id' => id) }
  end

  # The host the server names is not asked: only the link's query is taken.
  def next_link(token)
    { 'Link' => "<http://gateway.internal/v1/tasks?limit=2&status=pending&next_token=#{token}>; rel=\"next\"" }
  end

  def test_list_is_lazy_page_by_page
    @server.script({ body: tasks('a', 'b'), headers: next_link('t1') },
                   { body: tasks('c', 'd'), headers: next_link('t2') }, { body: tasks('e') })
    listed = @api.tasks.list(status: 'pending', limit: 2)
    assert_empty @server.requests
    assert_equal 'a', listed.next.task_id
    assert_equal 1, @server.requests.size
    assert_equal 'b', listed.next.task_id
    assert_equal 1, @server.requests.size # page 2 not asked for yet
    assert_equal 'c', listed.next.task_id
    assert_equal 2, @server.requests.size
    assert_equal({ 'limit' => '2', 'status' => 'pending', 'next_token' => 't1' }, @server.requests[1].query)
    assert_equal({ 'status' => 'pending', 'limit' => '2' }, @server.requests[0].query)
  end

  def test_first_asks_for_no_more_pages_than_it_needs
    @server.script({ body: tasks('a', 'b'), headers: next_link('t1') }, { body: tasks('c') })
    assert_equal %w[a b], @api.tasks.list(limit: 2).first(2).map(&:task_id)
    assert_equal 1, @server.requests.size
  end

  def test_list_page_gives_one_page_and_the_way_on
    @server.script({ body: tasks('a', 'b'), headers: next_link('t1') }, { body: tasks('c') })
    page = @api.tasks.list_page(status: 'pending', limit: 2)
    assert_equal %w[a b], page.items.map(&:task_id)
    assert page.next_page?
    assert_equal 't1', page.next_token
    assert_equal 1, @server.requests.size
    last = page.next_page
    assert_equal %w[c], last.map(&:task_id)
    refute last.next_page?
    assert_nil last.next_token
    assert_nil last.next_page

    @server.script({ body: tasks('c') })
    @api.tasks.list_page(status: 'pending', next_token: 't1')
    assert_equal({ 'status' => 'pending', 'next_token' => 't1' }, @server.requests.first.query)

    @server.script({ body: tasks('a'), headers: next_link('t1') }, { status: 503, body: error_body(503, 'busy') },
                   { body: tasks('b') })
    assert_equal %w[a b], @api.tasks.list.map(&:task_id)
    assert_equal 3, @server.requests.size
  end

  def test_no_server_is_a_connection_error_after_the_retries
    gone = ScriptedServer.new
    url = gone.url
    gone.close
    api = Humantask::APIClient.authorize!('k', base_url: url, max_retries: 1, **FAST)
    error = assert_raises(Humantask::APIConnectionError) { api.tasks.get('x') }
    assert_nil error.status_code
    assert_nil error.request_id
  end
end

class TestScaleCallsAgainstAScriptedServer < Minitest::Test
  include Fixtures

  # Names and ids go into the path as one segment each, whatever they hold.
  NAME = 'cats & dogs/2024?#%é'
  ENCODED_NAME = 'cats%20%26%20dogs%2F2024%3F%23%25%C3%A9'
  TASK_ID = 'a b/c?d'
  ENCODED_TASK_ID = 'a%20b%2Fc%3Fd'
  SCALE_TASK = TASK.merge('task_id' => TASK_ID, 'project' => 'kittens', 'batch' => NAME, 'tags' => ['cute'],
                          'updated_at' => '2016-06-30T07:40:00.000Z').freeze
  PARAMS = { 'instruction' => 'Is this a kitten or a cat?', 'attachment_type' => 'image',
             'categories' => %w[kitten cat] }.freeze
  PROJECT = { 'type' => 'categorization', 'name' => NAME, 'created_at' => '2016-06-30T07:38:32.861Z',
              'param_history' => [PARAMS.merge('version' => 0, 'created_at' => '2016-06-30T07:38:32.861Z')] }.freeze
  BATCH = { 'name' => NAME, 'project' => 'kittens', 'status' => 'staging', 'callback' => 'http://www.example.com/batch',
            'metadata' => { 'week' => 26 }, 'created_at' => '2016-06-30T07:38:32.861Z' }.freeze
  COUNTS = { 'status' => 'in_progress', 'pending' => 2, 'completed' => 1, 'canceled' => 0 }.freeze

  Call = Struct.new(:name, :call, :method, :path, :query, :json, :reply, :task, :retried, keyword_init: true)

  # Each call: what it sends (method, path, query, JSON body or none), what the server
  # answers, whether it is a Task, and whether a failure may be retried.
  CALLS = [
    Call.new(name: 'projects.create', call: ->(api) { api.projects.create(NAME, PARAMS) }, method: 'POST',
             path: '/scale/v1/projects', json: { 'type' => 'categorization', 'name' => NAME, 'params' => PARAMS },
             reply: PROJECT),
    Call.new(name: 'projects.get', call: ->(api) { api.projects.get(NAME) }, method: 'GET',
             path: "/scale/v1/projects/#{ENCODED_NAME}", reply: PROJECT, retried: true),
    Call.new(name: 'projects.list', call: ->(api) { api.projects.list }, method: 'GET', path: '/scale/v1/projects',
             reply: [PROJECT, PROJECT.merge('name' => 'kittens')], retried: true),
    Call.new(name: 'projects.set_params', call: ->(api) { api.projects.set_params(NAME, instruction: 'Kitten or cat?') },
             method: 'POST', path: "/scale/v1/projects/#{ENCODED_NAME}/setParams",
             json: { 'instruction' => 'Kitten or cat?' }, reply: PROJECT),
    Call.new(name: 'batches.create',
             call: ->(api) { api.batches.create('kittens', NAME, callback: BATCH['callback'], metadata: BATCH['metadata']) },
             method: 'POST', path: '/scale/v1/batches', reply: BATCH,
             json: { 'project' => 'kittens', 'name' => NAME, 'callback' => BATCH['callback'],
                     'metadata' => BATCH['metadata'] }),
    Call.new(name: 'batches.finalize', call: ->(api) { api.batches.finalize(NAME) }, method: 'POST',
             path: "/scale/v1/batches/#{ENCODED_NAME}/finalize", reply: BATCH.merge('status' => 'in_progress'),
             retried: true),
    Call.new(name: 'batches.get', call: ->(api) { api.batches.get(NAME) }, method: 'GET',
             path: "/scale/v1/batches/#{ENCODED_NAME}", reply: BATCH, retried: true),
    Call.new(name: 'batches.status', call: ->(api) { api.batches.status(NAME) }, method: 'GET',
             path: "/scale/v1/batches/#{ENCODED_NAME}/status", reply: COUNTS, retried: true),
    Call.new(name: 'tasks.audit', call: ->(api) { api.tasks.audit(TASK_ID, accepted: false, comments: 'a cat') },
             method: 'POST', path: "/scale/v1/task/#{ENCODED_TASK_ID}/audit",
             json: { 'accepted' => false, 'comments' => 'a cat' },
             reply: SCALE_TASK.merge('customer_review_status' => 'rejected'), task: true),
    Call.new(name: 'tasks.set_tags', call: ->(api) { api.tasks.set_tags(TASK_ID, %w[cute small]) }, method: 'POST',
             path: "/scale/v1/task/#{ENCODED_TASK_ID}/tags", json: %w[cute small], reply: SCALE_TASK, task: true,
             retried: true),
    Call.new(name: 'tasks.add_tags', call: ->(api) { api.tasks.add_tags(TASK_ID, Set['cute']) }, method: 'PUT',
             path: "/scale/v1/task/#{ENCODED_TASK_ID}/tags", json: %w[cute], reply: SCALE_TASK, task: true,
             retried: true),
    Call.new(name: 'tasks.delete_tags', call: ->(api) { api.tasks.delete_tags(TASK_ID, %w[small]) }, method: 'DELETE',
             path: "/scale/v1/task/#{ENCODED_TASK_ID}/tags", json: %w[small], reply: SCALE_TASK, task: true,
             retried: true),
    Call.new(name: 'tasks.set_metadata', call: ->(api) { api.tasks.set_metadata(TASK_ID, { 'order' => 7 }) },
             method: 'POST', path: "/scale/v1/task/#{ENCODED_TASK_ID}/setMetadata", json: { 'order' => 7 },
             reply: SCALE_TASK.merge('metadata' => { 'order' => 7 }), task: true, retried: true),
    Call.new(name: 'tasks.set_unique_id', call: ->(api) { api.tasks.set_unique_id(TASK_ID, 'order-1') },
             method: 'POST', path: "/scale/v1/task/#{ENCODED_TASK_ID}/unique_id", json: { 'unique_id' => 'order-1' },
             reply: SCALE_TASK.merge('unique_id' => 'order-1'), task: true, retried: true),
    Call.new(name: 'tasks.set_unique_id(nil)', call: ->(api) { api.tasks.set_unique_id(TASK_ID, nil) },
             method: 'DELETE', path: "/scale/v1/task/#{ENCODED_TASK_ID}/unique_id", reply: SCALE_TASK, task: true,
             retried: true),
    Call.new(name: 'tasks.cancel(clear_unique_id: true)', call: ->(api) { api.tasks.cancel(TASK_ID, clear_unique_id: true) },
             method: 'POST', path: "/scale/v1/task/#{ENCODED_TASK_ID}/cancel", query: { 'clear_unique_id' => 'true' },
             reply: SCALE_TASK.merge('status' => 'canceled'), task: true, retried: true),
    Call.new(name: 'tasks.create_categorization in a project',
             call: lambda { |api|
               api.tasks.create_categorization(project: 'kittens', batch: NAME, tags: ['cute'],
                                               attachment: 'http://www.example.com/kitten.jpg')
             },
             method: 'POST', path: '/scale/v1/task/categorization', reply: SCALE_TASK, task: true,
             json: { 'project' => 'kittens', 'batch' => NAME, 'tags' => ['cute'],
                     'attachment' => 'http://www.example.com/kitten.jpg' })
  ].freeze

  def setup
    @server = ScriptedServer.new
    @api = Humantask::APIClient.authorize!('live_test', base_url: @server.url, max_retries: 2, **FAST)
  end

  def teardown
    @server.close
  end

  def sent_json(request)
    assert_equal 'application/json', request.headers['content-type']
    JSON.parse(request.body)
  end

  def test_each_call_sends_its_method_path_query_and_body_and_answers_what_the_server_sent
    CALLS.each do |call|
      @server.script({ body: call.reply })
      answer = call.call.call(@api)
      assert_equal 1, @server.requests.size, call.name
      request = @server.requests.first
      assert_equal [call.method, call.path, call.query || {}], [request.method, request.path, request.query], call.name
      if call.json.nil?
        assert_equal '', request.body, call.name
      else
        assert_equal call.json, sent_json(request), call.name
      end
      if call.task
        assert_instance_of Humantask::Task, answer, call.name
        assert_equal call.reply, answer.to_h, call.name
      else
        assert_equal call.reply, answer, call.name
      end
    end
  end

  def test_each_call_raises_not_found_on_a_404_not_retried
    CALLS.each do |call|
      @server.script({ status: 404, body: error_body(404, "nothing at #{call.path}"),
                       headers: { 'X-Request-Id' => 'req-404' } })
      error = assert_raises(Humantask::NotFound, call.name) { call.call.call(@api) }
      assert_equal [404, "nothing at #{call.path}", 'req-404'], [error.status_code, error.message, error.request_id]
      assert_equal 1, @server.requests.size, call.name
    end
  end

  def test_only_the_calls_that_cannot_do_anything_twice_are_retried_after_a_503
    CALLS.each do |call|
      @server.script({ status: 503, body: error_body(503, 'busy') }, { body: call.reply })
      if call.retried
        call.call.call(@api)
        assert_equal 2, @server.requests.size, call.name
        assert_equal @server.requests[0].body, @server.requests[1].body, call.name
      else
        assert_raises(Humantask::ServiceUnavailable, call.name) { call.call.call(@api) }
        assert_equal 1, @server.requests.size, call.name
      end
    end
  end

  def test_what_is_not_given_is_not_sent
    @server.script({ body: PROJECT })
    @api.projects.create('kittens')
    assert_equal({ 'type' => 'categorization', 'name' => 'kittens' }, sent_json(@server.requests.first))
    @server.script({ body: BATCH })
    @api.batches.create('kittens', 'week 26')
    assert_equal({ 'project' => 'kittens', 'name' => 'week 26' }, sent_json(@server.requests.first))
    @server.script({ body: SCALE_TASK })
    @api.tasks.audit(TASK_ID, accepted: true)
    assert_equal({ 'accepted' => true }, sent_json(@server.requests.first))
  end

  def test_set_params_with_patch_says_so
    @server.script({ body: PROJECT })
    @api.projects.set_params('kittens', patch: true, categories: %w[kitten cat])
    assert_equal '/scale/v1/projects/kittens/setParams', @server.requests.first.path
    assert_equal({ 'categories' => %w[kitten cat], 'patch' => true }, sent_json(@server.requests.first))
  end

  def test_an_empty_or_missing_name_or_task_id_is_an_argument_error_and_nothing_is_sent
    @server.script({ body: {} })
    [-> { @api.projects.get('') }, -> { @api.projects.set_params(nil) }, -> { @api.batches.get('') },
     -> { @api.batches.finalize(nil) }, -> { @api.batches.status(7) }, -> { @api.tasks.audit('', accepted: true) },
     -> { @api.tasks.add_tags(nil, ['cute']) }].each do |call|
      assert_raises(ArgumentError) { call.call }
    end
    assert_empty @server.requests
  end

  def test_scale_v1_is_beside_the_base_urls_v1_under_its_path_prefix
    @server.script({ body: PROJECT })
    Humantask::APIClient.authorize!('k', base_url: "#{@server.url}/humantask/v1/").projects.get('kittens')
    assert_equal '/humantask/scale/v1/projects/kittens', @server.requests.first.path
  end

  def batches(*names)
    names.map { |name| BATCH.merge('name' => name) }
  end

  def test_batches_list_is_lazy_page_by_page_by_offset
    @server.script({ body: { 'docs' => batches('a', 'b'), 'totalDocs' => 5, 'offset' => 0, 'has_more' => true } },
                   { body: { 'docs' => batches('c', 'd'), 'totalDocs' => 5, 'offset' => 2, 'has_more' => true } },
                   { body: { 'docs' => batches('e'), 'totalDocs' => 5, 'offset' => 4, 'has_more' => false } })
    listed = @api.batches.list(project: 'kittens', status: 'staging')
    assert_empty @server.requests
    assert_equal 'a', listed.next['name']
    assert_equal 1, @server.requests.size
    assert_equal 'b', listed.next['name']
    assert_equal 1, @server.requests.size # page 2 not asked for yet
    assert_equal 'c', listed.next['name']
    assert_equal 2, @server.requests.size
    assert_equal %w[d e], [listed.next, listed.next].map { |batch| batch['name'] }
    assert_raises(StopIteration) { listed.next }
    assert_equal([0, 2, 4].map do |offset|
      ['GET', '/scale/v1/batches', { 'project' => 'kittens', 'status' => 'staging', 'offset' => offset.to_s,
                                     'limit' => '100' }]
    end, @server.requests.map { |request| [request.method, request.path, request.query] })
  end

  def test_batches_list_first_asks_for_no_more_pages_than_it_needs
    @server.script({ body: { 'docs' => batches('a', 'b'), 'has_more' => true } },
                   { body: { 'docs' => batches('c'), 'has_more' => false } })
    assert_equal %w[a], @api.batches.list.first(1).map { |batch| batch['name'] }
    assert_equal 1, @server.requests.size
    assert_equal({ 'offset' => '0', 'limit' => '100' }, @server.requests.first.query)
  end

  def test_batches_list_an_empty_page_ends_it_a_page_is_retried_a_404_is_not_found
    @server.script({ body: { 'docs' => [], 'has_more' => true } },
                   { body: { 'docs' => batches('a'), 'has_more' => false } })
    assert_equal [], @api.batches.list.to_a
    assert_equal 1, @server.requests.size

    @server.script({ body: { 'docs' => batches('a'), 'has_more' => true } }, { status: 503, body: error_body(503, 'busy') },
                   { body: { 'docs' => batches('b'), 'has_more' => false } })
    assert_equal %w[a b], @api.batches.list.map { |batch| batch['name'] }
    assert_equal %w[0 1 1], @server.requests.map { |request| request.query['offset'] }

    @server.script({ status: 404, body: error_body(404, 'no project named nowhere') })
    error = assert_raises(Humantask::NotFound) { @api.batches.list(project: 'nowhere').to_a }
    assert_equal 'no project named nowhere', error.message
    assert_equal 1, @server.requests.size
  end
end
