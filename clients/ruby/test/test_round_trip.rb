# frozen_string_literal: true

# The whole round trip: create, a worker completes the task, the signed callback arrives.
require_relative 'test_helper'

class TestRoundTrip < Minitest::Test
  include StackHelper

  def setup
    super
    reason = round_trip_missing
    skip reason if reason
  end

  def test_form_callback
    round_trip('form')
  end

  def test_json_callback
    round_trip('json')
  end

  def round_trip(callback_format)
    receiver = CallbackReceiver.new
    task = @api.tasks.createCategorization(**BIG_OR_SMALL, callback_url: receiver.url,
                                                           callback_format: callback_format)
    assert_equal [], @api.tasks.callbacks(task.task_id)
    complete_as_worker(task.task_id, 'big')
    callback = receiver.wait_for(60) { |request| request.headers['x-callback-task-id'] == task.task_id }

    secret = ENV.fetch('HUMANTASK_CALLBACK_SECRET')
    assert Humantask.verify_callback(secret, callback.headers, callback.body)
    refute Humantask.verify_callback('whsec_wrong', callback.headers, callback.body)
    payload = Humantask.parse_callback(callback.body, callback.headers['content-type'])
    assert_equal task.task_id, payload['task_id']
    assert_equal 'big', payload['response']['category']
    assert_equal %w[big small], payload['task']['params']['categories']

    done = @api.tasks.get(task.task_id)
    assert_equal 'completed', done.status
    refute_nil done.completed_at
    assert_equal({ 'category' => 'big', 'status_code' => 200 }, done.response)
    attempt = wait_until(30, 'the delivered callback in the log') do
      @api.tasks.callbacks(task.task_id).find(&:delivered)
    end
    assert_equal [1, 200], [attempt.attempt, attempt.status_code]

    error = assert_raises(Humantask::Conflict) { @api.tasks.cancel(task.task_id) }
    assert_equal 409, error.status_code
  ensure
    receiver&.close
  end
end
