# frozen_string_literal: true

module Humantask
  VERSION = '0.2.0'
end
