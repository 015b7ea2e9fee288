"""Model runner: loads one catalog model on one device and serves it to the gateway over gRPC.

The runner computes and nothing else. Queueing, admission, caching and retries belong to the
gateway, which sends finished batches over a unix socket.
"""
