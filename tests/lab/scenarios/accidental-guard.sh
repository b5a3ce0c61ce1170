#!/bin/bash
# Scenario "accidental-guard": scenario accidental with lunwatch's guard enforcing
# (lunwatch run --guard enforce). The ground truth flips: A, still holding the stale
# map after its failed detach, never reads volB's marker (its reads fail with EPERM),
# B reads and writes volB through the stale map normally, and an alert with
# denied=true names A. See accidental.sh.
export LAB_GUARD=enforce
exec bash "$(dirname "$0")/accidental.sh"
