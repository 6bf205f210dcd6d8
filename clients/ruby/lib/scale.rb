# frozen_string_literal: true

# humantask's Ruby client for the Scale v1 API: Ruby's standard library only.
#
#   require 'scale'
#   api = Scale::APIClient.authorize!('YOUR_API_KEY', base_url: 'http://localhost:8080')
#   task = api.tasks.createCategorization(callback_url: '...', instruction: '...',
#                                         attachment_type: 'text', attachment: 'car',
#                                         categories: %w[big small])
#   api.tasks.get(task.task_id)
#   api.tasks.list(status: 'pending').each { |t| ... }
#   api.tasks.cancel(task.task_id)
require_relative 'scale/errors'
require_relative 'scale/task'
require_relative 'scale/client'
require_relative 'scale/callbacks'

module Scale
  VERSION = '0.1.0'
end
