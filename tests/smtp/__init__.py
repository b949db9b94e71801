"""Tests for a3mail.smtp."""
