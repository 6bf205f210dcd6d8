# frozen_string_literal: true

module Humantask
  # One page of a list: its `items`, `next_page?`, `next_token` (the server's cursor, to
  # pass back later as `next_token:`) and `next_page` (one request; nil after the last).
  class Page
    include Enumerable

    attr_reader :items, :next_query

    def initialize(items, next_query, &fetch)
      @items = items
      @next_query = next_query
      @fetch = fetch
    end

    def next_page?
      !@next_query.nil?
    end

    def next_token
      @next_query && @next_query['next_token']
    end

    def next_page
      @next_query && @fetch.call(@next_query)
    end

    def each(&block)
      @items.each(&block)
    end

    def size
      @items.size
    end
  end
end
