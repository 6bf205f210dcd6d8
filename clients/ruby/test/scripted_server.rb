# frozen_string_literal: true

require 'json'
require 'socket'
require 'uri'

# A real HTTP server on 127.0.0.1 (a TCPServer and a thread per connection) that answers
# from a script, for the client's edge cases:
#
#   server = ScriptedServer.new
#   server.script({ status: 503, headers: { 'Retry-After' => '1' } }, { status: 200, body: task })
#   ... a client with base_url: server.url
#   server.requests.size # 2
#
# Each request takes the next reply; the last one answers everything after. A reply may
# hang up without answering (`hang_up: true`) or wait before it answers (`delay:` seconds).
class ScriptedServer
  REASONS = { 200 => 'OK', 400 => 'Bad Request', 401 => 'Unauthorized', 403 => 'Forbidden', 404 => 'Not Found',
              405 => 'Method Not Allowed', 409 => 'Conflict', 413 => 'Payload Too Large',
              415 => 'Unsupported Media Type', 429 => 'Too Many Requests', 500 => 'Internal Server Error',
              502 => 'Bad Gateway', 503 => 'Service Unavailable', 504 => 'Gateway Timeout' }.freeze
  Received = Struct.new(:method, :path, :query, :headers, :body, :at, keyword_init: true)

  attr_reader :requests

  def initialize
    @server = TCPServer.new('127.0.0.1', 0)
    @replies = [{ status: 200, body: [] }]
    @requests = []
    @lock = Mutex.new
    @thread = Thread.new do
      loop do
        socket = @server.accept
        Thread.new(socket) { |client| serve(client) }
      end
    rescue IOError, Errno::EBADF
      nil # closed
    end
  end

  def url
    "http://127.0.0.1:#{@server.addr[1]}"
  end

  def script(*replies)
    @lock.synchronize do
      @replies = replies
      @requests.clear
    end
  end

  def close
    @server.close
    @thread.join(5)
  end

  private

  def serve(socket)
    method, target = socket.gets.to_s.split
    headers = {}
    while (line = socket.gets) && line != "\r\n"
      name, value = line.split(':', 2)
      headers[name.downcase] = value.strip
    end
    body = socket.read(headers.fetch('content-length', '0').to_i).to_s
    uri = URI(target.to_s)
    reply = @lock.synchronize do
      @requests << Received.new(method: method, path: uri.path, query: URI.decode_www_form(uri.query.to_s).to_h,
                                headers: headers, body: body, at: Process.clock_gettime(Process::CLOCK_MONOTONIC))
      @replies.size > 1 ? @replies.shift : @replies.first
    end
    sleep reply[:delay] if reply[:delay]
    return if reply[:hang_up]

    payload = reply.key?(:body) ? JSON.generate(reply[:body]) : ''
    status = reply.fetch(:status, 200)
    head = ["HTTP/1.1 #{status} #{REASONS.fetch(status, 'Scripted')}", 'Content-Type: application/json',
            "Content-Length: #{payload.bytesize}", 'Connection: close']
    (reply[:headers] || {}).each { |name, value| head << "#{name}: #{value}" }
    socket.write("#{head.join("\r\n")}\r\n\r\n#{payload}")
  rescue IOError, SystemCallError
    nil # the client gave up first
  ensure
    socket.close
  end
end
