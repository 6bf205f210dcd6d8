# frozen_string_literal: true

require 'uri'

module Humantask
  # `api.batches`: a project's tasks in named groups, called back once all are done
  # (Scale's batches, under /scale/v1/). A batch is its JSON as a Hash: `name`,
  # `project`, `status` (`staging`, `in_progress`, `completed`), `metadata`, ...
  class Batches
    def initialize(client)
      @client = client
    end

    # A `staging` batch of `project`; `callback` (a URL) receives the batch and its counts
    # once every task of it is completed or canceled, after `finalize`.
    def create(project, name, callback: nil, metadata: nil)
      json = { 'project' => project, 'name' => name, 'callback' => callback, 'metadata' => metadata }.compact
      @client.request('POST', "#{SCALE}batches", json: json)
    end

    # No more tasks join it: `in_progress`, then `completed` once they are done.
    def finalize(name)
      @client.request('POST', batch_path(name, '/finalize'), retryable: true)
    end

    def get(name)
      @client.request('GET', batch_path(name))
    end

    # { 'status', 'pending', 'completed', 'canceled' }.
    def status(name)
      @client.request('GET', batch_path(name, '/status'))
    end

    # The batches, newest first: an Enumerator that asks for a page only when needed.
    def list(project: nil, status: nil)
      Enumerator.new do |yielder|
        offset = 0
        loop do
          query = { 'project' => project, 'status' => status, 'offset' => offset.to_s, 'limit' => '100' }.compact
          page = @client.request('GET', "#{SCALE}batches", query: query)
          page['docs'].each { |batch| yielder << batch }
          offset += page['docs'].size
          break unless page['has_more'] && !page['docs'].empty?
        end
      end
    end

    private

    def batch_path(name, suffix = '')
      raise ArgumentError, "a batch's name must be a non-empty string" unless name.is_a?(String) && !name.empty?

      "#{SCALE}batches/#{URI.encode_www_form_component(name).gsub('+', '%20')}#{suffix}"
    end
  end
end
