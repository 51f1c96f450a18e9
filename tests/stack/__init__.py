"""Tests of stack/: the local stack, the supervisor and the mail and webhook captures."""
