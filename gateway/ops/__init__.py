"""Operations: liveness, readiness and the gateway's Prometheus metrics."""
