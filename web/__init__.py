"""The browser front end: static pages that call only the public API, served by `python -m web`."""
