# frozen_string_literal: true

require_relative 'lib/humantask/version'

Gem::Specification.new do |spec|
  spec.name = 'humantask'
  spec.version = Humantask::VERSION
  spec.summary = 'Ruby client for humantask, the self-hosted human-task server with a Scale v1 compatible API'
  spec.description = 'Create, get, list and cancel categorization tasks on a humantask server, ' \
                     'with retries, one error class per kind of failure, lazy pagination and ' \
                     'helpers that verify the signed callbacks. Ruby\'s standard library only.'
  spec.authors = ['humantask']
  spec.license = 'Apache-2.0'
  spec.required_ruby_version = '>= 3.0'
  spec.files = Dir['lib/**/*.rb'] + ['README.md']
  spec.require_paths = ['lib']
  spec.metadata['rubygems_mfa_required'] = 'true'
end
