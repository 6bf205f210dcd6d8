"""Messages on RabbitMQ: commands (imperative, request/reply) and events (past tense)."""
