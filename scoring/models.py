# Scoring models and rules arrive with the scoring engine (issue 3).
