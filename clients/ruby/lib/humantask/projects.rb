# frozen_string_literal: true

require 'uri'

module Humantask
  # `api.projects`: named defaults for tasks' create parameters, kept as versions (Scale's
  # projects, under /scale/v1/). A project is its JSON as a Hash: `name`, `type`,
  # `param_history` (the last entry is the current params, with its `version`).
  class Projects
    def initialize(client)
      @client = client
    end

    # A categorization project; `params` are its tasks' defaults (Humantask::Conflict when
    # the name is taken).
    def create(name, params = nil)
      json = { 'type' => 'categorization', 'name' => name }
      json['params'] = params if params
      @client.request('POST', "#{SCALE}projects", json: json)
    end

    def get(name)
      @client.request('GET', project_path(name))
    end

    # Every project, oldest first.
    def list
      @client.request('GET', "#{SCALE}projects")
    end

    # A new version of the project's params; `patch: true` keeps those not given.
    def set_params(name, patch: false, **params)
      json = params.transform_keys(&:to_s)
      json['patch'] = true if patch
      @client.request('POST', project_path(name, '/setParams'), json: json)
    end

    private

    def project_path(name, suffix = '')
      raise ArgumentError, "a project's name must be a non-empty string" unless name.is_a?(String) && !name.empty?

      "#{SCALE}projects/#{URI.encode_www_form_component(name).gsub('+', '%20')}#{suffix}"
    end
  end
end
