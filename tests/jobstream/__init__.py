"""Tests of jobstream/: settings, offsets and dead letters."""
