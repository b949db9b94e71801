"""Tests of outbound delivery."""
