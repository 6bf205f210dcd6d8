# frozen_string_literal: true

# humantask's Ruby client: the Scale v1 API of a humantask server. Ruby's standard
# library only.
#
#   require 'humantask'
#   api = Humantask::APIClient.authorize!('YOUR_API_KEY', base_url: 'http://localhost:8080')
#   task = api.tasks.createCategorization(callback_url: '...', instruction: '...',
#                                         attachment_type: 'text', attachment: 'car',
#                                         categories: %w[big small])
#   api.tasks.get(task.task_id)
#   api.tasks.list(status: 'pending').each { |t| ... }
#   api.tasks.cancel(task.task_id)
require_relative 'humantask/version'
require_relative 'humantask/errors'
require_relative 'humantask/task'
require_relative 'humantask/page'
require_relative 'humantask/client'
require_relative 'humantask/tasks'
require_relative 'humantask/projects'
require_relative 'humantask/batches'
require_relative 'humantask/callbacks'
