"""Human review: the verdict store, the triage queue, retraining from verdicts and exports."""
