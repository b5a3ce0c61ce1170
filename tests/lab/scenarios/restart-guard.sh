#!/bin/bash
# Scenario "restart-guard": scenario restart with lunwatch's guard enforcing. The
# ground truth flips: A reads 0 bytes of volB, while no agent runs too (the pinned
# fail-closed hooks close the map on the scan), and B is never refused once the
# restarted agent is ready. See restart.sh.
export LAB_GUARD=enforce
exec bash "$(dirname "$0")/restart.sh"
