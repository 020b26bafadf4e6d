"""Loopback emulators of the cloud model APIs, for tests and benchmarks."""
