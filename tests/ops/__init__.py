"""Tests of ops/: the Prometheus rules (promtool) and the Grafana dashboards (against a live Prometheus)."""
