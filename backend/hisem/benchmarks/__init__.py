"""Benchmarks behind `hisem bench`: figures printed and written as JSON, never asserted by tests."""
