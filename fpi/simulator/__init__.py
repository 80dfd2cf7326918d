"""Synthetic pipelines and the dialogues they log, as trace files the contract accepts."""
