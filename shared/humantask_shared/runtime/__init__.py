"""The runtime floor: what a service process needs to run, on top of the pure floor.

Connections (RabbitMQ, MongoDB), declaring the topology, sending and serving commands,
publishing and consuming events, tracing, health, settings, logging and the process
runner. Adapters and bootstraps import it; a domain never does.
"""
