"""Scoring: metrics (:mod:`.metrics`), the one batched inference routine (:mod:`.inference`),
``harvit evaluate`` (:mod:`.evaluate`) and the classic baseline (:mod:`.baseline`)."""
