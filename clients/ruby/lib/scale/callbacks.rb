# frozen_string_literal: true

require 'json'
require 'openssl'
require 'uri'

module Scale
  # `v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">` keyed with the callback secret.
  def self.sign(secret, timestamp, body)
    "v1=#{OpenSSL::HMAC.hexdigest('SHA256', secret, "#{timestamp}.#{body}")}"
  end

  # Did humantask send this callback? `headers` any capitalisation, `body` the raw bytes.
  # Constant-time; a timestamp older than `tolerance` seconds is refused (nil: not checked).
  def self.verify_callback(secret, headers, body, tolerance: 300, now: Time.now.to_i)
    found = headers.to_h.transform_keys { |name| name.to_s.downcase }
    timestamp = Array(found['x-callback-timestamp']).first.to_s
    signature = Array(found['x-callback-signature']).first.to_s
    return false unless timestamp.match?(/\A\d+\z/) && !signature.empty?
    return false if tolerance && (now - timestamp.to_i).abs > tolerance

    expected = sign(secret, timestamp, body)
    signature.split(',').any? do |candidate|
      candidate = candidate.strip
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
