#!/bin/bash
# Scenario "hung-cinder" (issue 12, point 4): scenario intentional (monitor) with
# lunwatch's [cinder] endpoint a listener that accepts connections and never answers.
# Keystone authentication and Cinder listing run off the event loop: the leak's
# CROSS_INSTANCE_ACCESS still comes within 1 s of A's first read of volB (asserted),
# no alert accuses the rightful new owner B, and lunwatch's log shows the Cinder
# refresh was still running (hung) while it judged. See intentional.sh.
export LAB_HUNG_CINDER=1 LAB_PROMETHEUS=0
exec bash "$(dirname "$0")/intentional.sh"
