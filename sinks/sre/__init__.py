"""The SRE tools: `python -m sinks.sre.replay` rebuilds read models from their topics, `python -m sinks.sre.lag`
shows consumer lag, `checksum.py` fingerprints a read model so two rebuilds can be compared.
"""
