"""Plan and apply: the diff against the lockfile and the journaled engine."""
