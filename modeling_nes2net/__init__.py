"""Nes2Net speech anti-spoofing models for transformers."""
