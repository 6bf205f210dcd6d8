# frozen_string_literal: true

module Humantask
  # The statuses this client knows; a newer server may send another.
  TASK_STATUSES = %w[pending completed canceled].freeze

  # The task object: a reader per field (nil when absent), `[]` and `to_h`. Timestamps
  # stay the API's strings; fields and statuses a newer server adds come through as they are.
  class Task
    FIELDS = %w[task_id created_at completed_at callback_url type status instruction params
                response metadata unique_id canceled_at min_workers max_workers confidence
                gold_category updated_at project batch tags customer_review_status].freeze

    FIELDS.each { |field| define_method(field) { @fields[field] } }

    def initialize(fields)
      @fields = fields.freeze
    end

    def [](field)
      @fields[field.to_s]
    end

    def to_h
      @fields
    end

    def ==(other)
      other.is_a?(Task) && other.to_h == to_h
    end

    def inspect
      "#<Humantask::Task #{task_id} #{status}>"
    end
  end

  # One attempt at delivering a task's callback.
  CallbackAttempt = Struct.new(:attempt, :at, :status_code, :error, :delivered, keyword_init: true)
end
