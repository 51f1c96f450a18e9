"""The notification topology: email, SMS and push, each notification delivered once.

Run its two stages with `python -m topologies.notifications --stage fresh` and `--stage retry`.
"""
