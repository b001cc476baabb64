"""Tests of ``otelzmq show``."""
