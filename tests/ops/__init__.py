"""Tests of a3mail.ops."""
