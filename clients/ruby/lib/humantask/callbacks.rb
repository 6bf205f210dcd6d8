# frozen_string_literal: true

require 'json'
require 'openssl'
require 'uri'

module Humantask
  CALLBACK_SECRET_PREFIX = 'whsec_'
  # ASCII digits only (never "١٧٠٠" or "１７００"), and few enough to be a time.
  CALLBACK_TIMESTAMP = /\A[0-9]{1,15}\z/n

  # The HMAC key of a `whsec_...` secret: the bytes its base64 part stands for.
  def self.callback_signing_key(secret)
    secret = secret.to_s
    encoded = secret.start_with?(CALLBACK_SECRET_PREFIX) ? secret[CALLBACK_SECRET_PREFIX.length..] : secret
    encoded.unpack1('m')
  end

  # The `webhook-signature` value (Standard Webhooks) for `body` sent as `msg_id` at
  # `timestamp`: `v1,<base64 HMAC-SHA256 of "<msg_id>.<timestamp>.<body>">`.
  def self.sign(secret, msg_id, timestamp, body)
    signed = [msg_id, timestamp, body].map { |part| part.to_s.b }.join('.'.b)
    "v1,#{[OpenSSL::HMAC.digest('SHA256', callback_signing_key(secret), signed)].pack('m0')}"
  end

  # Did humantask send this callback? Standard Webhooks headers (`webhook-id`,
  # `webhook-timestamp`, `webhook-signature`, any capitalisation), `body` the raw bytes.
  # Constant-time; a timestamp more than `tolerance` seconds from now is refused (nil: not
  # checked). Malformed headers are false, never an exception.
  def self.verify_callback(secret, headers, body, tolerance: 300, now: Time.now.to_i)
    found = headers.to_h.transform_keys { |name| name.to_s.downcase }
    msg_id, timestamp, signatures = %w[webhook-id webhook-timestamp webhook-signature].map do |name|
      Array(found[name]).first.to_s.b
    end
    return false if msg_id.empty? || signatures.empty? || !timestamp.match?(CALLBACK_TIMESTAMP)
    return false if tolerance && (now - timestamp.to_i).abs > tolerance

    expected = sign(secret, msg_id, timestamp, body)
    signatures.split(' '.b).any? do |candidate|
      candidate.bytesize == expected.bytesize && OpenSSL.fixed_length_secure_compare(candidate, expected)
    end
  end

  # The callback's object: JSON as is, or the form decoded with its bracket nesting
  # (`task[params][categories][0]=big`); form values stay strings.
  def self.parse_callback(body, content_type = 'application/x-www-form-urlencoded')
    return JSON.parse(body) if content_type.to_s.split(';').first.to_s.strip.casecmp?('application/json')

    root = {}
    URI.decode_www_form(body.to_s).each do |name, value|
      head, rest = name.split('[', 2)
      keys = [head, *(rest ? "[#{rest}".scan(/\[([^\]]*)\]/).flatten : [])]
      leaf = keys.pop
      node = keys.reduce(root) { |parent, key| parent[key].is_a?(Hash) ? parent[key] : (parent[key] = {}) }
      node[leaf.empty? ? node.size.to_s : leaf] = value
    end
    arrays(root)
  end

  def self.arrays(node)
    return node unless node.is_a?(Hash)

    node = node.transform_values { |value| arrays(value) }
    return node unless !node.empty? && node.keys.all? { |key| key.match?(/\A\d+\z/) }

    node.sort_by { |key, _| key.to_i }.map(&:last)
  end
  private_class_method :arrays
end
