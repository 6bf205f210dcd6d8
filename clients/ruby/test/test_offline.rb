# frozen_string_literal: true

# The client on its own, against a scripted local HTTP server (no stack needed):
# configuration, retries, errors, pagination and forward compatibility.
require 'minitest/autorun'
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
