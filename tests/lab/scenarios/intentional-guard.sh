#!/bin/bash
# Scenario "intentional-guard": scenario intentional with lunwatch's guard enforcing
# (lunwatch run --guard enforce). The ground truth flips: A never reads volB's marker
# (its reads after the remap fail with EPERM), B reads and writes volB normally, and an
# alert with denied=true names A. See intentional.sh.
export LAB_GUARD=enforce
exec bash "$(dirname "$0")/intentional.sh"
