"""What the scored traces say: overview, dialogues, cohorts, fairness, monitoring, comparisons."""
