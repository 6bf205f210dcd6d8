# frozen_string_literal: true

# What the suites share: where the running stack is (from the environment), a worker
# that completes a task through the worker API, and a real HTTP server for callbacks.
#
#   HUMANTASK_URL              the gateway, e.g. http://localhost:8080        (required)
#   HUMANTASK_API_KEY          a customer's API key                            (required)
#   HUMANTASK_CALLBACK_SECRET  that customer's callback_secret                (round trip)
#   HUMANTASK_WORKER_TOKENS    comma-separated worker tokens                   (round trip)
#   HUMANTASK_METRICS_URL      that gateway's /metrics (its HEALTH_PORT): the requests it answered
#   HUMANTASK_UNAVAILABLE_URL  a gateway that answers 503, and ..._METRICS_URL its /metrics
#   HUMANTASK_RATE_LIMITED_URL a gateway with a low RATE_LIMIT_PER_SECOND, ..._API_KEY a
#                              customer's key there, ..._METRICS_URL its /metrics
# The suites skip what their variables are missing for.
require 'minitest/autorun'
require 'json'
require 'net/http'
require 'socket'
require 'humantask'

module StackHelper
  BASE_URL = ENV['HUMANTASK_URL']
  API_KEY = ENV['HUMANTASK_API_KEY']
  WORKER_TOKENS = ENV.fetch('HUMANTASK_WORKER_TOKENS', '').split(',').reject(&:empty?)
  # Tasks no test completes call back a closed port on this machine, never the network.
  NOWHERE = 'http://127.0.0.1:9/never-called'
  BIG_OR_SMALL = {
    callback_url: NOWHERE,
    instruction: 'Would you say this item is big or small?',
    attachment_type: 'text',
    attachment: 'car',
    categories: %w[big small]
  }.freeze

  def setup
    skip 'set HUMANTASK_URL and HUMANTASK_API_KEY to run against a stack' unless BASE_URL && API_KEY
    @api = Humantask::APIClient.authorize!(API_KEY, base_url: BASE_URL)
  end

  # A second early, against clock rounding: tasks created from then on are this run's.
  STARTED = Time.now.utc - 1

  # Leave no pending task of this run behind: the worker pool is shared by every test.
  def teardown
    @api&.tasks&.list(status: 'pending', start_time: STARTED)&.each { |task| @api.tasks.cancel(task.task_id) }
  end

  def worker_post(path, token, json = nil)
    uri = URI.join(BASE_URL, path)
    request = Net::HTTP::Post.new(uri)
    request.basic_auth(token, '')
    if json
      request['Content-Type'] = 'application/json'
      request.body = JSON.generate(json)
    end
    Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }
  end

  # How many requests a gateway has answered, from its /metrics
  # (humantask_gateway_http_requests_total), for the labels given (method, route, status).
  def answered(metrics_url, **labels)
    text = Net::HTTP.get(URI.join(metrics_url, '/metrics'))
    text.each_line.sum do |line|
      # Label values may hold braces themselves (route="/v1/task/{task_id}").
      match = /\Ahumantask_gateway_http_requests_total\{((?:\w+="[^"]*",?)*)\} (\S+)$/.match(line.chomp)
      next 0 unless match

      found = match[1].scan(/(\w+)="([^"]*)"/).to_h
      labels.all? { |name, value| found[name.to_s] == value.to_s } ? Float(match[2]) : 0
    end
  end

  # Spend a key's whole rate limit: requests until the gateway answers one 429.
  def spend_rate_limit(url, key)
    1000.times do
      uri = URI.join(url, '/v1/tasks?limit=1')
      request = Net::HTTP::Get.new(uri)
      request.basic_auth(key, '')
      return if Net::HTTP.start(uri.host, uri.port) { |http| http.request(request) }.code == '429'
    end
    raise 'no 429 after 1000 requests: is RATE_LIMIT_PER_SECOND low on that gateway?'
  end

  # Why the round trip cannot run against this stack, or nil.
  def round_trip_missing
    return 'set HUMANTASK_CALLBACK_SECRET and HUMANTASK_WORKER_TOKENS' if !ENV['HUMANTASK_CALLBACK_SECRET'] || WORKER_TOKENS.empty?
    return 'the worker API is not there yet: POST /v1/work/claim answers 404' if worker_post('/v1/work/claim', '').code == '404'

    nil
  end

  # Claim `task_id` and submit `category`, as the workbench would. The pool is FIFO: a
  # worker that claims an older task keeps it while the next claims; all released after.
  def complete_as_worker(task_id, category)
    held = []
    WORKER_TOKENS.each do |token|
      claim = worker_post('/v1/work/claim', token)
      raise "#{task_id} not claimed: #{claim.code} #{claim.body}" unless claim.code == '200'

      claimed = JSON.parse(claim.body)['task_id']
      if claimed == task_id
        submit = worker_post("/v1/work/#{task_id}/submit", token, { category: category })
        raise "submit: #{submit.code} #{submit.body}" unless submit.code == '200'

        return JSON.parse(submit.body)
      end
      held << [token, claimed]
    end
    raise "older pending tasks fill every spare worker: #{held}"
  ensure
    held.each { |token, other| worker_post("/v1/work/#{other}/release", token) }
  end

  # Poll until the block returns something truthy, failing at the deadline.
  def wait_until(timeout, what)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    loop do
      value = yield
      return value if value
      raise "#{what}: not within #{timeout}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline

      sleep 0.1
    end
  end
end

# A real HTTP server on 127.0.0.1 (a TCPServer and a thread) that records POSTs, answers 200.
class CallbackReceiver
  Request = Struct.new(:path, :headers, :body, keyword_init: true)

  def initialize
    @server = TCPServer.new('127.0.0.1', 0)
    @requests = []
    @lock = Mutex.new
    @arrived = ConditionVariable.new
    @thread = Thread.new { loop { serve(@server.accept) } }
  end

  def url
    "http://127.0.0.1:#{@server.addr[1]}/callback"
  end

  # The first request that matches, waiting up to `timeout` seconds for it.
  def wait_for(timeout, &matches)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
    @lock.synchronize do
      loop do
        found = @requests.find(&matches)
        return found if found

        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        raise "no matching callback within #{timeout}s; got #{@requests.size}" unless left.positive?

        @arrived.wait(@lock, left)
      end
    end
  end

  def close
    @thread.kill
    @server.close
  end

  private

  def serve(socket)
    path = socket.gets.to_s.split[1]
    headers = {}
    while (line = socket.gets) && line != "\r\n"
      name, value = line.split(':', 2)
      headers[name.downcase] = value.strip
    end
    body = socket.read(headers.fetch('content-length', '0').to_i)
    @lock.synchronize do
      @requests << Request.new(path: path, headers: headers, body: body)
      @arrived.broadcast
    end
    socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
  ensure
    socket.close
  end
end
