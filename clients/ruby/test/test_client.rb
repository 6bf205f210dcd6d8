# frozen_string_literal: true

# The Ruby client against a running humantask: Scale's v1 calls, every error class with
# its request id, retries on the gateway's real 429 and 503, lazy pages.
require_relative 'test_helper'

class TestClient < Minitest::Test
  include StackHelper

  SEED_CREATE = {
    callback_url: 'http://www.example.com/callback',
    instruction: 'Is this company public or private?',
    attachment_type: 'website',
    attachment: 'http://www.google.com/',
    categories: %w[public private]
  }.freeze
  UNKNOWN_ID = '0123456789abcdef01234567'
  # The id the gateway gives a request when the caller sends none (X-Request-Id).
  REQUEST_ID = /\A[0-9a-f]{32}\z/

  def assert_api_error(error_class, status)
    error = assert_raises(error_class) { yield }
    assert_kind_of Humantask::Error, error
    assert_equal status, error.status_code
    if status
      assert_equal({ 'status_code' => status, 'error' => error.message }, error.body)
      assert_match REQUEST_ID, error.request_id
    end
    error
  end

  def test_seed_create_categorization_then_get
    task = @api.tasks.createCategorization(SEED_CREATE)
    assert_kind_of Humantask::Task, task
    assert_match(/\A[0-9a-f]{24}\z/, task.task_id)
    assert_equal 'pending', task.status
    assert_equal 'categorization', task.type
    assert_equal({ 'attachment_type' => 'website', 'attachment' => 'http://www.google.com/',
                   'categories' => %w[public private] }, task.params)
    assert_match(/\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\z/, task.created_at)
    assert_nil task.completed_at
    assert_equal task, @api.tasks.get(task.task_id)
    assert_equal 'pending', @api.tasks.create_categorization(**BIG_OR_SMALL).status
  end

  def test_base_url_and_key_come_from_humantask_url_and_humantask_api_key
    assert_equal BASE_URL, ENV.fetch('HUMANTASK_URL')
    api = Humantask::APIClient.authorize!
    assert_equal "#{BASE_URL}/v1/", api.base_url
    task = api.tasks.createCategorization(**BIG_OR_SMALL)
    assert_equal task.task_id, api.tasks.get(task.task_id).task_id
  end

  def test_list_follows_the_link_header_across_pages_and_filters
    created = (0...5).map { |n| @api.tasks.createCategorization(**BIG_OR_SMALL, attachment: "item #{n}") }
    newest_first = created.map(&:task_id).reverse
    since = created.first.created_at
    assert_equal newest_first, @api.tasks.list(limit: 2, start_time: since).map(&:task_id)
    assert(@api.tasks.list(limit: 2).all? { |task| task.is_a?(Humantask::Task) })
    assert_equal newest_first.first(3), @api.tasks.list(limit: 1, start_time: since).first(3).map(&:task_id)
    window = @api.tasks.list(start_time: created[1].created_at, end_time: created[2].created_at)
    assert_equal [created[1].task_id], window.map(&:task_id)
    unique_id = "rb-#{Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)}"
    mine = @api.tasks.createCategorization(**BIG_OR_SMALL, unique_id: unique_id)
    assert_equal [mine.task_id], @api.tasks.list(unique_id: unique_id, status: 'pending').map(&:task_id)
    assert_equal [], @api.tasks.list(status: 'completed', start_time: since).to_a

    page = @api.tasks.list_page(limit: 2, start_time: since, end_time: mine.created_at)
    assert_equal newest_first.first(2), page.items.map(&:task_id)
    assert page.next_page? && page.next_token
    again = @api.tasks.list_page(limit: 2, start_time: since, end_time: mine.created_at, next_token: page.next_token)
    assert_equal newest_first[2, 2], again.map(&:task_id)
    assert_equal again.items, page.next_page.items
  end

  def test_list_asks_for_page_two_only_when_the_caller_gets_to_it
    skip 'set HUMANTASK_METRICS_URL' unless ENV['HUMANTASK_METRICS_URL']
    first = @api.tasks.createCategorization(**BIG_OR_SMALL)
    2.times { @api.tasks.createCategorization(**BIG_OR_SMALL) }
    list_requests = -> { answered(ENV.fetch('HUMANTASK_METRICS_URL'), method: 'GET', route: '/v1/tasks', status: 200) }
    before = list_requests.call
    tasks = @api.tasks.list(limit: 2, start_time: first.created_at)
    assert_equal before, list_requests.call
    2.times { tasks.next }
    assert_equal before + 1, list_requests.call
    assert_equal first.task_id, tasks.next.task_id
    assert_equal before + 2, list_requests.call
  end

  def test_cancel_then_cancel_again
    task = @api.tasks.createCategorization(**BIG_OR_SMALL)
    canceled = @api.tasks.cancel(task.task_id)
    assert_equal 'canceled', canceled.status
    refute_nil canceled.canceled_at
    assert_equal canceled, @api.tasks.cancel(task.task_id)
    assert_equal 'canceled', @api.tasks.get(task.task_id).status
  end

  def test_bad_request_names_the_parameter
    error = assert_api_error(Humantask::BadRequest, 400) do
      @api.tasks.createCategorization(**SEED_CREATE, categories: ['public'])
    end
    assert_match(/categories/, error.message)
  end

  def test_unknown_key_is_unauthorized
    stranger = Humantask::APIClient.authorize!('live_not_a_real_key', base_url: BASE_URL)
    assert_api_error(Humantask::Unauthorized, 401) { stranger.tasks.get(UNKNOWN_ID) }
  end

  def test_unknown_task_is_not_found
    error = assert_api_error(Humantask::NotFound, 404) { @api.tasks.get(UNKNOWN_ID) }
    assert_includes error.message, UNKNOWN_ID
    assert_api_error(Humantask::NotFound, 404) { @api.tasks.cancel(UNKNOWN_ID) }
  end

  def test_wrong_method_is_method_not_allowed
    assert_api_error(Humantask::MethodNotAllowed, 405) { @api.request('DELETE', 'tasks') }
  end

  def test_unique_id_clash_is_conflict
    unique_id = "rb-clash-#{Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)}"
    first = @api.tasks.createCategorization(**BIG_OR_SMALL, unique_id: unique_id)
    error = assert_api_error(Humantask::Conflict, 409) do
      @api.tasks.createCategorization(**BIG_OR_SMALL, attachment: 'bus', unique_id: unique_id)
    end
    assert_includes error.message, first.task_id
  end

  def test_huge_body_is_payload_too_large
    error = assert_api_error(Humantask::PayloadTooLarge, 413) do
      @api.tasks.createCategorization(**BIG_OR_SMALL, instruction: 'x' * (1024 * 1024 + 1))
    end
    assert_match(/too large/, error.message)
  end

  def test_other_content_type_is_unsupported_media_type
    error = assert_api_error(Humantask::UnsupportedMediaType, 415) do
      @api.request('POST', 'task/categorize', body: 'car', headers: { 'Content-Type' => 'text/plain' })
    end
    assert_match(/Content-Type/, error.message)
  end

  def test_503_is_retried_then_raised_and_a_create_without_unique_id_sent_once
    skip 'set HUMANTASK_UNAVAILABLE_URL and its METRICS_URL' unless ENV['HUMANTASK_UNAVAILABLE_METRICS_URL']
    busy = Humantask::APIClient.authorize!(API_KEY, base_url: ENV.fetch('HUMANTASK_UNAVAILABLE_URL'),
                                                    max_retries: 2, backoff: 0.01, max_backoff: 0.05)
    unavailable = -> { answered(ENV.fetch('HUMANTASK_UNAVAILABLE_METRICS_URL'), status: 503) }
    before = unavailable.call
    error = assert_api_error(Humantask::ServiceUnavailable, 503) { busy.tasks.get(UNKNOWN_ID) }
    assert_match(/did not answer in time/, error.message)
    assert_kind_of Humantask::ServerError, error
    assert_equal 1.0, error.retry_after
    assert_equal 3, unavailable.call - before # the first and max_retries more
    before = unavailable.call
    assert_api_error(Humantask::ServiceUnavailable, 503) { busy.tasks.createCategorization(**BIG_OR_SMALL) }
    assert_equal 1, unavailable.call - before
  end

  def test_429_is_retried_after_retry_after_except_a_create_without_unique_id
    skip 'set HUMANTASK_RATE_LIMITED_URL, its API_KEY and METRICS_URL' unless ENV['HUMANTASK_RATE_LIMITED_METRICS_URL']
    url = ENV.fetch('HUMANTASK_RATE_LIMITED_URL')
    key = ENV.fetch('HUMANTASK_RATE_LIMITED_API_KEY')
    limited = Humantask::APIClient.authorize!(key, base_url: url, max_retries: 3, max_backoff: 5)
    too_many = -> { answered(ENV.fetch('HUMANTASK_RATE_LIMITED_METRICS_URL'), status: 429) }
    spend_rate_limit(url, key)
    before = too_many.call
    error = assert_api_error(Humantask::RateLimited, 429) { limited.tasks.createCategorization(**BIG_OR_SMALL) }
    assert_operator error.retry_after, :>=, 1
    assert_equal 1, too_many.call - before

    unique_id = "rb-limited-#{Process.clock_gettime(Process::CLOCK_REALTIME, :nanosecond)}"
    task = limited.tasks.createCategorization(**BIG_OR_SMALL, unique_id: unique_id)
    assert_equal unique_id, task.unique_id
    assert_operator too_many.call - before, :>=, 2, 'the create with unique_id met a 429 and was retried'
    spend_rate_limit(url, key)
    seen = too_many.call
    assert_equal task, limited.tasks.get(task.task_id)
    assert_operator too_many.call, :>, seen, 'the get met a 429 and was retried'
  end

  def test_no_server_is_a_connection_error
    nobody = Humantask::APIClient.authorize!(API_KEY, base_url: 'http://127.0.0.1:9', max_retries: 1, backoff: 0.01)
    error = assert_api_error(Humantask::APIConnectionError, nil) { nobody.tasks.get(UNKNOWN_ID) }
    assert_nil error.request_id
  end
end

class TestCallbackHelpers < Minitest::Test
  SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' # the Standard Webhooks spec's example
  BODY = 'task_id=abc&response[category]=big'

  def signed_headers(now, msg_id: 'msg_1')
    { 'webhook-id' => msg_id, 'webhook-timestamp' => now.to_s,
      'webhook-signature' => Humantask.sign(SECRET, msg_id, now, BODY) }
  end

  def test_sign_is_the_standard_webhooks_signature
    # What the official libraries compute: v1,base64(HMAC-SHA256(base64-decoded secret, id.ts.body))
    key = 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'.unpack1('m')
    expected = "v1,#{[OpenSSL::HMAC.digest('SHA256', key, "msg_1.1700000000.#{BODY}")].pack('m0')}"
    assert_equal expected, Humantask.sign(SECRET, 'msg_1', 1_700_000_000, BODY)
  end

  def test_verify_callback_accepts_what_sign_made_and_nothing_else
    now = 1_700_000_000
    headers = signed_headers(now)
    assert Humantask.verify_callback(SECRET, headers, BODY, now: now)
    assert Humantask.verify_callback(SECRET, headers.transform_keys(&:upcase), BODY, now: now)
    refute Humantask.verify_callback("whsec_#{'A' * 44}", headers, BODY, now: now)
    refute Humantask.verify_callback(SECRET, headers, "#{BODY}x", now: now)
    refute Humantask.verify_callback(SECRET, headers.merge('webhook-id' => 'msg_2'), BODY, now: now)
    refute Humantask.verify_callback(SECRET, headers, BODY, now: now + 301)
    refute Humantask.verify_callback(SECRET, headers, BODY, now: now - 301)
    assert Humantask.verify_callback(SECRET, headers, BODY, tolerance: nil, now: 0)
    several = headers.merge('webhook-signature' => "v1,bm9wZQ== #{headers['webhook-signature']}")
    assert Humantask.verify_callback(SECRET, several, BODY, now: now)
  end

  def test_verify_callback_says_no_to_malformed_timestamps_without_raising
    ['x', '', ' 1700000000', '1700000000.5', '-1700000000', '1' * 40,
     "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660", # Arabic-Indic digits
     "\uff11\uff17\uff10\uff10\uff10\uff10\uff10\uff10\uff10\uff10", # fullwidth digits
     "17\xff".b, "\xff\xfe".dup.force_encoding('UTF-8')].each do |timestamp|
      headers = signed_headers(1_700_000_000).merge('webhook-timestamp' => timestamp)
      assert_equal false, Humantask.verify_callback(SECRET, headers, BODY, tolerance: nil), timestamp.inspect
      assert_equal false, Humantask.verify_callback(SECRET, headers, BODY), timestamp.inspect
    end
    assert_equal false, Humantask.verify_callback(SECRET, {}, BODY)
  end

  def test_parse_callback_decodes_the_bracket_nested_form
    form = 'task[params][categories][0]=big&task[params][categories][1]=small' \
           '&response[category]=big&response[status_code]=200&task_id=abc'
    assert_equal({ 'task' => { 'params' => { 'categories' => %w[big small] } },
                   'response' => { 'category' => 'big', 'status_code' => '200' }, 'task_id' => 'abc' },
                 Humantask.parse_callback(form))
  end
end
